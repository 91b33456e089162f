"""Lykta's web application, its data and its command line."""
