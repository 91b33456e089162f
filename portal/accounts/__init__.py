"""Staff accounts: who they are, their role, their personal key pair and their second factor."""
