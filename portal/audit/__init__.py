"""The append-only, hash-chained audit log: who did what to which tip, and when; never content."""
