"""A desk's canned replies: prepared answers, one version per launch language (issue 4).

An officer answers the tipster in the tipster's language, so a reply (named by a `key`) has a version per
resident language, each a `CannedReply` row with its own title and body. The desk lead of a desk keeps
them: only an account whose role is "desk lead" and which is a member of the desk may list, write or
delete them. Not an administrator without membership, not an analyst, not the lead of another desk: the
replies speak for the desk. Holding the desk key is not needed, as the replies are desk templates, not tip
content, and are stored in clear.

Every change is audited (who, which desk, which reply and language), never the title or the text.
"""

from __future__ import annotations

import dataclasses
import re
import secrets

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from portal import i18n
from portal.accounts.models import DeskMembership, StaffAccount
from portal.audit import log as audit
from portal.i18n import N_
from portal.triage.models import CannedReply

EDITOR_ROLE = "desk-lead"
MAX_TITLE = 200  # CannedReply.title
MAX_BODY = 5000  # CannedReply.body
KEY_PATTERN = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?")  # as the seeded keys ("more-details")
# Control characters are refused, except the line breaks and tabs a multi-line answer needs.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]")

ERROR_TITLE = N_("Write a title of at most %(limit)s characters.")
ERROR_BODY = N_("Write the answer, at most %(limit)s characters.")
ERROR_LANGUAGE = N_("Choose one of the languages.")


class CannedReplyError(Exception):
    """The reply or version does not exist (any more) for this desk, or changed meanwhile."""


@dataclasses.dataclass(frozen=True)
class FieldError:
    """A msgid for one field and the values of its placeholders (as portal.admin.forms.FieldError)."""

    message: str
    params: dict[str, object] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Draft:
    """A checked version: the language, title and body as they will be stored."""

    language: str
    title: str
    body: str


@dataclasses.dataclass(frozen=True)
class ReplyGroup:
    """One canned reply of a desk: its versions by language, and the launch languages it still lacks."""

    key: str
    versions: dict[str, CannedReply]

    @property
    def missing(self) -> list[i18n.Locale]:
        return [locale for locale in i18n.LOCALES if locale.code not in self.versions]

    def title_for(self, preferred: str) -> str:
        """The title to list the reply under: in `preferred` if written, else in the first launch language."""
        if preferred in self.versions:
            return self.versions[preferred].title
        return next(self.versions[loc.code].title for loc in i18n.LOCALES if loc.code in self.versions)


def may_edit(db: Session, *, desk_id: int, account: StaffAccount) -> bool:
    """True for an enabled desk lead who is a member of the desk; for nobody else."""
    if account.role != EDITOR_ROLE or account.disabled or account.id is None:
        return False
    return db.get(DeskMembership, (desk_id, account.id)) is not None


def is_key(value: str) -> bool:
    return KEY_PATTERN.fullmatch(value) is not None


def clean_title(value: str) -> str | None:
    """One line: inner whitespace collapsed, printable, 1 to MAX_TITLE characters."""
    title = " ".join(value.split())
    if not title or len(title) > MAX_TITLE or not title.isprintable():
        return None
    return title


def clean_body(value: str) -> str | None:
    """Line breaks kept (as \\n), no other control characters, 1 to MAX_BODY characters once trimmed."""
    body = value.replace("\r\n", "\n").replace("\r", "\n").strip()
    if not body or len(body) > MAX_BODY or _CONTROL.search(body):
        return None
    return body


def check_draft(language: str, title: str, body: str) -> Draft | dict[str, FieldError]:
    """The draft to store, or the errors by field name (nothing is stored then)."""
    errors: dict[str, FieldError] = {}
    if language not in i18n.BY_CODE:
        errors["language"] = FieldError(ERROR_LANGUAGE)
    cleaned_title = clean_title(title)
    if cleaned_title is None:
        errors["title"] = FieldError(ERROR_TITLE, {"limit": MAX_TITLE})
    cleaned_body = clean_body(body)
    if cleaned_body is None:
        errors["body"] = FieldError(ERROR_BODY, {"limit": MAX_BODY})
    if errors or cleaned_title is None or cleaned_body is None:
        return errors
    return Draft(language=language, title=cleaned_title, body=cleaned_body)


def replies_of(db: Session, desk_id: int) -> list[ReplyGroup]:
    """The desk's replies, oldest first, each with every version it has."""
    groups: dict[str, dict[str, CannedReply]] = {}
    rows = db.exec(select(CannedReply).where(CannedReply.desk_id == desk_id).order_by(col(CannedReply.id)))
    for row in rows:
        groups.setdefault(row.key, {})[row.language] = row
    return [ReplyGroup(key=key, versions=versions) for key, versions in groups.items()]


def reply_of(db: Session, *, desk_id: int, key: str) -> ReplyGroup | None:
    rows = db.exec(select(CannedReply).where(CannedReply.desk_id == desk_id, CannedReply.key == key)).all()
    return ReplyGroup(key=key, versions={r.language: r for r in rows}) if rows else None


def _version(db: Session, *, desk_id: int, key: str, language: str) -> CannedReply | None:
    return db.exec(
        select(CannedReply).where(
            CannedReply.desk_id == desk_id, CannedReply.key == key, CannedReply.language == language
        )
    ).first()


def _audit(db: Session, action: str, *, actor: str, desk_id: int, key: str, language: str | None) -> None:
    # Which reply and language, never its title or text.
    detail: dict[str, object] = {"reply": key}
    if language is not None:
        detail["language"] = language
    audit.record(db, f"desk.canned-reply-{action}", actor=actor, desk_id=desk_id, detail=detail)


def create_reply(db: Session, draft: Draft, *, desk_id: int, actor: str) -> str:
    """A new reply with its first version; returns its key (random: it is never typed, only linked)."""
    key = secrets.token_hex(8)
    db.add(CannedReply(desk_id=desk_id, key=key, language=draft.language, title=draft.title, body=draft.body))
    _flush(db)
    _audit(db, "created", actor=actor, desk_id=desk_id, key=key, language=draft.language)
    return key


def save_version(db: Session, draft: Draft, *, desk_id: int, key: str, actor: str) -> bool:
    """Write the reply's version in `draft.language`, new or replacing the old; True if it was new.

    CannedReplyError if the reply does not exist for this desk (deleted meanwhile, or another desk's).
    """
    if reply_of(db, desk_id=desk_id, key=key) is None:
        raise CannedReplyError("no such reply")
    existing = _version(db, desk_id=desk_id, key=key, language=draft.language)
    if existing is None:
        db.add(
            CannedReply(desk_id=desk_id, key=key, language=draft.language, title=draft.title, body=draft.body)
        )
    else:
        existing.title, existing.body = draft.title, draft.body
        db.add(existing)
    _flush(db)
    _audit(
        db,
        "created" if existing is None else "edited",
        actor=actor,
        desk_id=desk_id,
        key=key,
        language=draft.language,
    )
    return existing is None


def delete_version(db: Session, *, desk_id: int, key: str, language: str, actor: str) -> None:
    existing = _version(db, desk_id=desk_id, key=key, language=language)
    if existing is None:
        raise CannedReplyError("no such version")
    db.delete(existing)
    _flush(db)
    _audit(db, "deleted", actor=actor, desk_id=desk_id, key=key, language=language)


def delete_reply(db: Session, *, desk_id: int, key: str, actor: str) -> int:
    """Delete every version of the reply; returns how many there were."""
    group = reply_of(db, desk_id=desk_id, key=key)
    if group is None:
        raise CannedReplyError("no such reply")
    for row in group.versions.values():
        db.delete(row)
    _flush(db)
    _audit(db, "deleted", actor=actor, desk_id=desk_id, key=key, language=None)
    return len(group.versions)


def _flush(db: Session) -> None:
    """Flush now, so that two leads writing the same version at once end in an error, not a duplicate."""
    try:
        db.flush()
    except IntegrityError as exc:
        raise CannedReplyError("changed meanwhile") from exc
