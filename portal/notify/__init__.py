"""E-mail notifications to staff (issue 5, part 4): the outbox, the sender and the settings pages.

Nothing here ever reads a tip's content: the outbox rows and the e-mails carry the kind of event, the desk
and the case number only (DESIGN 4).
"""
