"""Catalogue stage: the data model, ingestion from files, and the store behind one interface."""
