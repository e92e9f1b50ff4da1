"""Evaluation stage: offline metrics and the `eval` protocols that compare every method side by side."""
