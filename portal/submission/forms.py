"""The tip form: field limits, parsing and validation. Errors are message ids, translated when shown."""

from __future__ import annotations

import dataclasses
import json
import unicodedata
from collections.abc import Mapping

from portal.i18n import N_
from portal.network.catalogue import CATEGORY_CODES, HOW_KNOWN, category

# Field name -> maximum length in characters. Generous for a resident's account, small enough that
# nobody can store a novel per request.
TEXT_LIMITS = {
    "what": 10_000,
    "when": 500,
    "where": 1_000,
    "who": 5_000,
    "contact": 1_000,
}
REQUIRED = ("municipality", "category", "what")
HOW_KNOWN_CODES = frozenset(code for code, _ in HOW_KNOWN)

ERROR_REQUIRED = N_("Please fill in this field.")
ERROR_TOO_LONG = N_("This text is too long. Please shorten it to at most %(limit)s characters.")
ERROR_UNKNOWN_CHOICE = N_("Please choose one of the options.")
ERROR_BAD_TEXT = N_("This text contains characters that cannot be used. Please check it.")


@dataclasses.dataclass(frozen=True)
class TipAnswers:
    """What the resident answered, as it will be encrypted (contact details go in their own envelope)."""

    municipality: str
    category: str
    what: str
    when: str
    where: str
    how_known: str
    who: str
    contact: str

    def answers_json(self) -> bytes:
        fields = {k: getattr(self, k) for k in ("what", "when", "where", "how_known", "who")}
        return json.dumps(fields, ensure_ascii=False).encode("utf-8")

    def fields(self) -> dict[str, str]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class FieldError:
    message: str
    limit: int | None = None


def clean_text(value: str) -> str | None:
    """NFC-normalised text with line endings unified; None if it holds control characters."""
    value = unicodedata.normalize("NFC", value.replace("\r\n", "\n").replace("\r", "\n"))
    if any(unicodedata.category(c) == "Cc" and c not in "\n\t" for c in value):
        return None
    return value.strip()


def validate(
    raw: Mapping[str, str], *, municipalities: frozenset[str]
) -> tuple[TipAnswers | None, dict[str, FieldError]]:
    """Check a submitted form; return the answers, or None and an error per field."""
    errors: dict[str, FieldError] = {}
    values: dict[str, str] = {}
    for name in ("municipality", "category", "how_known", *TEXT_LIMITS):
        cleaned = clean_text(raw.get(name, ""))
        if cleaned is None:
            errors[name] = FieldError(ERROR_BAD_TEXT)
            continue
        values[name] = cleaned
        if name in TEXT_LIMITS and len(cleaned) > TEXT_LIMITS[name]:
            errors[name] = FieldError(ERROR_TOO_LONG, TEXT_LIMITS[name])
    for name in REQUIRED:
        if not values.get(name) and name not in errors:
            errors[name] = FieldError(ERROR_REQUIRED)
    if values.get("municipality") and values["municipality"] not in municipalities:
        errors["municipality"] = FieldError(ERROR_UNKNOWN_CHOICE)
    chosen = values.get("category", "")
    if chosen and (chosen not in CATEGORY_CODES or category(chosen).emergency):
        errors["category"] = FieldError(ERROR_UNKNOWN_CHOICE)
    if values.get("how_known") and values["how_known"] not in HOW_KNOWN_CODES:
        errors["how_known"] = FieldError(ERROR_UNKNOWN_CHOICE)
    if errors:
        return None, errors
    return TipAnswers(**{k: values.get(k, "") for k in TipAnswers.__dataclass_fields__}), {}


def is_emergency(raw: Mapping[str, str]) -> bool:
    code = raw.get("category", "")
    return code in CATEGORY_CODES and category(code).emergency
