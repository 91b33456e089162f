"""The resident side: the tip form, submission, reply codes and the follow-up mailbox."""
