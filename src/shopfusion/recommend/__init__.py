"""Recommendation stage: candidate sources (fit/recommend estimators) and their fusion."""
