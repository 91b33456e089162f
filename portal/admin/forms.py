"""Reading and checking the administration forms.

The admin forms need repeated fields (the desks of an invitation) and many fields at once (the routing
grid has a select per category and desk), which `portal.formdata.parse_urlencoded` refuses on purpose for
the resident side. These forms carry no tip content, only names, codes and ids, and the staff app already
caps every body at 256 KiB before it is read (portal.app, BodyLimit).
"""

from __future__ import annotations

import dataclasses
import re
import urllib.parse
from collections.abc import Mapping

from portal.i18n import N_

# The routing grid of a municipality with every desk shown: 17 categories x some 40 desks, and room to grow.
MAX_ADMIN_FIELDS = 5000
MAX_NAME = 200
CODE_PATTERN = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?")

ERROR_CODE = N_(
    "Use 1 to 64 lower-case letters a to z, digits and hyphens, starting and ending with a letter or digit."
)
ERROR_CODE_TAKEN = N_("This code is already in use.")
ERROR_NAME = N_("Write a name of at most 200 characters.")
ERROR_CHOOSE = N_("Choose one of the options.")
ERROR_NUMBER_RANGE = N_("Write a whole number from %(min)s to %(max)s.")


@dataclasses.dataclass(frozen=True)
class FieldError:
    """A translatable message (a msgid) for one field, with the values of its named placeholders."""

    message: str
    params: Mapping[str, object] = dataclasses.field(default_factory=dict)


class AdminForm:
    """A parsed application/x-www-form-urlencoded body: the first value of a field, or all of them."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._pairs = pairs

    @classmethod
    def parse(cls, body: bytes, content_type: str) -> AdminForm:
        """An empty form for anything but a well-formed urlencoded body (its CSRF check then fails)."""
        if content_type.split(";", 1)[0].strip().lower() != "application/x-www-form-urlencoded":
            return cls([])
        try:
            text = body.decode("utf-8")
            pairs = urllib.parse.parse_qsl(
                text, keep_blank_values=True, max_num_fields=MAX_ADMIN_FIELDS, errors="strict"
            )
        except (UnicodeDecodeError, ValueError):
            return cls([])
        return cls(pairs)

    def get(self, name: str, default: str = "") -> str:
        for key, value in self._pairs:
            if key == name:
                return value
        return default

    def get_all(self, name: str) -> list[str]:
        return [value for key, value in self._pairs if key == name]

    def with_prefix(self, prefix: str) -> dict[str, str]:
        """Fields whose name starts with `prefix`, keyed by the rest of the name (first value wins)."""
        found: dict[str, str] = {}
        for key, value in self._pairs:
            if key.startswith(prefix):
                found.setdefault(key[len(prefix) :], value)
        return found

    def values(self, *names: str) -> dict[str, str]:
        """What the person typed, to put back into the form when it is shown again with errors."""
        return {name: self.get(name) for name in names}


def clean_code(value: str) -> str | None:
    """A code as stored (lower-case), or None if it is not one. Codes name things in URLs and key labels."""
    code = value.strip().lower()
    return code if CODE_PATTERN.fullmatch(code) else None


def clean_name(value: str) -> str | None:
    """A display name: trimmed, inner whitespace collapsed, no control characters, 1 to MAX_NAME long.

    Anything printable is allowed, `<` and `&` included ("Bygg & Miljö"): templates escape on output.
    """
    name = " ".join(value.split())
    if not name or len(name) > MAX_NAME or not name.isprintable():
        return None
    return name


def clean_int(value: str, *, minimum: int, maximum: int) -> int | None:
    text = value.strip()
    if not re.fullmatch(r"[0-9]{1,9}", text):
        return None
    number = int(text)
    return number if minimum <= number <= maximum else None


def clean_id(value: str) -> int | None:
    return int(value) if re.fullmatch(r"[0-9]{1,9}", value.strip()) else None
