"""Rank stage: fusion of several candidate sources' scores (weighted now, learned later)."""
