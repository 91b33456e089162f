"""The e-mails themselves: what each event says, in the staff member's language (sv, en or fi).

A letter names the desk, the case number and the back office's address, and nothing else: no category,
no answer, no message, no file name (DESIGN 4: no notification carries tip content). Strings are in the
staff catalog domain.
"""

from __future__ import annotations

import dataclasses
import email.utils
import gettext
from collections.abc import Sequence
from email.message import EmailMessage
from email.policy import SMTP

from portal import i18n
from portal.i18n import N_
from portal.notify.models import ACKNOWLEDGE_TOMORROW, FEEDBACK_TOMORROW, NEW_TIP, TIPSTER_ANSWERED

STAFF_CODES = tuple(locale.code for locale in i18n.STAFF_LOCALES)


@dataclasses.dataclass(frozen=True)
class Event:
    """What a letter may say about one notification: clear-text facts only."""

    kind: str
    case_number: str
    desk_name: str


@dataclasses.dataclass(frozen=True)
class Letter:
    subject: str
    body: str
    language: str


# One line of a digest, and the subject of a single e-mail, per kind of event.
LINES = {
    NEW_TIP: N_("New tip %(case)s for %(desk)s"),
    TIPSTER_ANSWERED: N_("The tipster answered in case %(case)s (%(desk)s)"),
    ACKNOWLEDGE_TOMORROW: N_("Case %(case)s (%(desk)s) must be acknowledged by tomorrow"),
    FEEDBACK_TOMORROW: N_("The tipster of case %(case)s (%(desk)s) must have feedback by tomorrow"),
}
SUBJECTS = {
    NEW_TIP: N_("Lykta: a new tip for %(desk)s"),
    TIPSTER_ANSWERED: N_("Lykta: the tipster answered in case %(case)s"),
    ACKNOWLEDGE_TOMORROW: N_("Lykta: acknowledge case %(case)s by tomorrow"),
    FEEDBACK_TOMORROW: N_("Lykta: feedback on case %(case)s is due tomorrow"),
}
OPEN_AT = N_("Open the back office to read it: %(url)s")
OPEN = N_("Open the Lykta back office to read it.")
BY_DESIGN = N_(
    "By design, this e-mail says nothing about what the tip contains. You can change or stop these "
    'e-mails under "E-mail notifications" in the back office.'
)


def _say(translations: gettext.NullTranslations, table: dict[str, str], event: Event) -> str:
    return translations.gettext(table[event.kind]) % {"case": event.case_number, "desk": event.desk_name}


def _footer(translations: gettext.NullTranslations, staff_url: str) -> str:
    where = translations.gettext(OPEN_AT) % {"url": staff_url} if staff_url else translations.gettext(OPEN)
    return where + "\n\n" + translations.gettext(BY_DESIGN)


def single(event: Event, *, translations: gettext.NullTranslations, language: str, staff_url: str) -> Letter:
    body = _say(translations, LINES, event) + ".\n\n" + _footer(translations, staff_url) + "\n"
    return Letter(subject=_say(translations, SUBJECTS, event), body=body, language=language)


def digest(
    events: Sequence[Event], *, translations: gettext.NullTranslations, language: str, staff_url: str
) -> Letter:
    """Everything new for one person since the last digest, one line per event, oldest first."""
    count = len(events)
    subject = translations.ngettext("Lykta: %(num)d new event", "Lykta: %(num)d new events", count) % {
        "num": count
    }
    lines = "\n".join(f"- {_say(translations, LINES, event)}" for event in events)
    body = lines + "\n\n" + _footer(translations, staff_url) + "\n"
    return Letter(subject=subject, body=body, language=language)


def language_of(account_language: str) -> str:
    """The staff member's back-office language; Swedish if it is not one the back office speaks."""
    return account_language if account_language in STAFF_CODES else i18n.DEFAULT_LOCALE.code


def as_email(letter: Letter, *, sender: str, to: str) -> EmailMessage:
    """The letter as an RFC 5322 message. `Auto-Submitted` keeps out-of-office replies from coming back."""
    message = EmailMessage(policy=SMTP)
    message["From"] = sender
    message["To"] = to
    message["Subject"] = letter.subject
    message["Date"] = email.utils.formatdate(localtime=False, usegmt=True)
    domain = email.utils.parseaddr(sender)[1].rpartition("@")[2] or None
    message["Message-ID"] = email.utils.make_msgid(domain=domain)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(letter.body, charset="utf-8")
    message["Content-Language"] = letter.language  # after set_content, which replaces every Content-*
    return message
