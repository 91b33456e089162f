"""Retention: how long a tip is kept, the legal hold that stops deletion, and `lykta purge` (issue 5)."""
