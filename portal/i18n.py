"""The one table of locales, and the Babel catalogs behind them (STYLE rule 9).

Catalogs are compiled in memory from `locales/<lang>/LC_MESSAGES/messages.po` when the app starts, so a
checkout runs without a build step; `.mo` files are build output and never read here.
"""

from __future__ import annotations

import dataclasses
import gettext
import io
from collections.abc import Iterable
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

# A source checkout (and an editable install) reads the top-level `locales/`; a wheel carries a copy of
# the catalogs inside the package (setup.py).
_SOURCE_LOCALES = Path(__file__).resolve().parent.parent / "locales"
LOCALES_DIR = _SOURCE_LOCALES if _SOURCE_LOCALES.is_dir() else Path(__file__).resolve().parent / "locales"


@dataclasses.dataclass(frozen=True)
class Locale:
    """A launch language: URL prefix, Babel locale, the name its speakers use, direction and script."""

    code: str  # the URL prefix: /sv/, /fa-AF/
    babel: str  # the catalog folder and Babel locale: fa_AF
    native_name: str
    english_name: str
    direction: str  # "ltr" or "rtl", for <html dir>
    script: str  # ISO 15924, picks the self-hosted font stack


LOCALES: tuple[Locale, ...] = (
    Locale("sv", "sv", "Svenska", "Swedish", "ltr", "Latn"),
    Locale("en", "en", "English", "English", "ltr", "Latn"),
    Locale("fi", "fi", "Suomi", "Finnish", "ltr", "Latn"),
    Locale("ar", "ar", "العربية", "Arabic", "rtl", "Arab"),
    Locale("syr", "syr", "ܣܘܪܝܝܐ", "Syriac (Suryoyo)", "rtl", "Syrc"),
    Locale("so", "so", "Soomaali", "Somali", "ltr", "Latn"),
    Locale("ti", "ti", "ትግርኛ", "Tigrinya", "ltr", "Ethi"),
    Locale("fa", "fa", "فارسی", "Persian", "rtl", "Arab"),
    Locale("fa-AF", "fa_AF", "دری", "Dari", "rtl", "Arab"),
    Locale("pl", "pl", "Polski", "Polish", "ltr", "Latn"),
)
DEFAULT_LOCALE = LOCALES[0]
BY_CODE = {locale.code: locale for locale in LOCALES}
# The back office speaks the languages of the staff (issue 4), from its own catalog domain.
STAFF_LOCALES: tuple[Locale, ...] = tuple(BY_CODE[code] for code in ("sv", "en", "fi"))
RESIDENT_DOMAIN = "messages"
STAFF_DOMAIN = "staff"
SOURCE_LANGUAGE = "en"  # msgids are English; the en catalog is the identity


def N_(message: str) -> str:
    """Mark a module-level string for extraction; it is translated where it is shown."""
    return message


def load_translations(
    locale: Locale, *, domain: str = RESIDENT_DOMAIN, locales_dir: Path = LOCALES_DIR
) -> gettext.NullTranslations:
    """The compiled catalog of `locale`, or the identity for the source language or a missing catalog."""
    po_path = locales_dir / locale.babel / "LC_MESSAGES" / f"{domain}.po"
    if locale.code == SOURCE_LANGUAGE or not po_path.exists():
        return gettext.NullTranslations()
    with po_path.open("rb") as f:
        catalog = read_po(f, locale=locale.babel)
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return Translations(buffer)


def load_all(
    *, domain: str = RESIDENT_DOMAIN, locales_dir: Path = LOCALES_DIR
) -> dict[str, gettext.NullTranslations]:
    locales = STAFF_LOCALES if domain == STAFF_DOMAIN else LOCALES
    return {
        locale.code: load_translations(locale, domain=domain, locales_dir=locales_dir) for locale in locales
    }


def negotiate(accept_language: str | None, *, available: Iterable[Locale] = LOCALES) -> Locale:
    """Pick a locale from an Accept-Language header; the default if nothing matches."""
    from babel import negotiate_locale

    codes = {locale.babel.lower().replace("_", "-"): locale for locale in available}
    preferred = []
    for part in (accept_language or "").split(",")[:20]:
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag and quality > 0:
            preferred.append((quality, tag.strip().lower()))
    preferred.sort(key=lambda item: -item[0])
    match = negotiate_locale([tag for _, tag in preferred], list(codes), sep="-")
    return codes[match] if match else DEFAULT_LOCALE
