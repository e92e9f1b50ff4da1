"""Turning the store into served models: full builds, and retraining one part as a new model version.

Sits above search and recommend (it fits them) and below the engine (which loads what it writes).
"""
