"""Serve stage: the HTTP API over a built workspace, its auth, limits and metrics."""
