"""Organisations, municipalities, desks and the routing table between them."""
