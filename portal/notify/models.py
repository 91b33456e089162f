"""Who wants e-mail, and the outbox of notifications waiting to be sent (issue 5, part 4).

A notification row names an event (its kind), the staff member it is for, the desk and the tip; never what
the tip says (DESIGN 4). The mail is written when it is sent, from the case number and desk name in clear.
"""

from __future__ import annotations

import datetime

from sqlmodel import Field, SQLModel

from portal.db import utcnow
from portal.i18n import N_

OFF, EACH, DIGEST = "off", "each", "digest"
MODE_LABELS = {
    OFF: N_("No e-mail"),
    EACH: N_("An e-mail for each event"),
    DIGEST: N_("One e-mail a day with everything new"),
}
MODES = tuple(MODE_LABELS)

NEW_TIP, TIPSTER_ANSWERED = "new-tip", "tipster-answered"
ACKNOWLEDGE_TOMORROW, FEEDBACK_TOMORROW = "acknowledge-tomorrow", "feedback-tomorrow"
KIND_LABELS = {
    NEW_TIP: N_("New tip"),
    TIPSTER_ANSWERED: N_("The tipster answered"),
    ACKNOWLEDGE_TOMORROW: N_("Acknowledgement due tomorrow"),
    FEEDBACK_TOMORROW: N_("Feedback due tomorrow"),
}
KINDS = tuple(KIND_LABELS)

PENDING, SENDING, SENT, FAILED, DROPPED = "pending", "sending", "sent", "failed", "dropped"


class NotificationSetting(SQLModel, table=True):
    """A staff member's own choice: where to, and how often. No row means no e-mail.

    A table of its own rather than columns on the staff account: the address is the only personal contact
    detail Lykta keeps, and it lives, is shown and is deleted in one place.
    """

    staff_id: int = Field(foreign_key="staffaccount.id", primary_key=True)
    email: str = Field(default="", max_length=254)
    mode: str = Field(default=OFF, max_length=16)
    # The last daily digest sent to this person, so that there is one a day whatever the number of senders.
    digest_sent_at: datetime.datetime | None = None
    updated_at: datetime.datetime = Field(default_factory=utcnow)


class Notification(SQLModel, table=True):
    """One event for one staff member, written in the transaction of the event itself.

    `pending` rows are claimed by a sender (`sending`, until `claimed_until`), then `sent`, or back to
    `pending` with a later `next_attempt_at`, or `failed` after the last attempt; `dropped` when the person
    no longer wants e-mail by the time it would go out. `last_error` is an exception class name, never its
    message (which may quote an address).
    """

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=32)
    staff_id: int = Field(foreign_key="staffaccount.id", index=True)
    desk_id: int = Field(foreign_key="desk.id")
    tip_id: str = Field(foreign_key="tip.id", index=True, max_length=32, ondelete="CASCADE")
    created_at: datetime.datetime = Field(default_factory=utcnow)
    status: str = Field(default=PENDING, max_length=16, index=True)
    attempts: int = 0
    next_attempt_at: datetime.datetime = Field(default_factory=utcnow)
    claimed_until: datetime.datetime | None = None
    last_error: str | None = Field(default=None, max_length=100)
    sent_at: datetime.datetime | None = None


class DeadlineReminder(SQLModel, table=True):
    """That the reminder of one deadline of one tip was enqueued: once per tip and deadline, ever."""

    tip_id: str = Field(foreign_key="tip.id", primary_key=True, max_length=32, ondelete="CASCADE")
    deadline: str = Field(primary_key=True, max_length=32)  # acknowledge or feedback
    created_at: datetime.datetime = Field(default_factory=utcnow)
