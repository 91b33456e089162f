"""Desk keys and who holds them: grants to staff keys and to each organisation's recovery key."""
