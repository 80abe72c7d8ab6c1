"""Overlay clips to share: drawing (clip) and the request read from the project (job)."""
