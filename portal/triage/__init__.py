"""The back office: staff log in, read the tips routed to their desks, answer, note, hand on."""
