"""Jinja2 with Babel: one environment, translations passed per render so requests never share state."""

from __future__ import annotations

import gettext
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup
from starlette.background import BackgroundTask
from starlette.responses import HTMLResponse

from portal import i18n

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"


def make_environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        extensions=["jinja2.ext.i18n"],
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.policies["ext.i18n.trimmed"] = True
    env.newstyle_gettext = True  # type: ignore[attr-defined]
    return env


def gettext_callables(translations: gettext.NullTranslations) -> dict[str, Any]:
    """`gettext`, `ngettext` and `_` in Jinja's newstyle form: named placeholders, values escaped."""

    def translate(message: str, **variables: Any) -> Markup:
        # The catalog is ours, not user input; Markup's % escapes every variable (as jinja2.ext.i18n does).
        return Markup(translations.gettext(message)) % variables  # noqa: S704

    def translate_plural(singular: str, plural: str, n: int, **variables: Any) -> Markup:
        variables.setdefault("num", n)
        return Markup(translations.ngettext(singular, plural, n)) % variables  # noqa: S704

    return {"gettext": translate, "_": translate, "ngettext": translate_plural}


class Renderer:
    """Renders a template in one locale; the translations of every locale are loaded once."""

    def __init__(
        self,
        translations: dict[str, gettext.NullTranslations],
        *,
        locales: tuple[i18n.Locale, ...] = i18n.LOCALES,
    ) -> None:
        self.env = make_environment()
        self.translations = translations
        self.locales = locales

    def render(
        self,
        template: str,
        *,
        locale: i18n.Locale,
        status_code: int = 200,
        headers: dict[str, str] | None = None,
        background: BackgroundTask | None = None,
        **context: Any,
    ) -> HTMLResponse:
        callables = gettext_callables(self.translations[locale.code])
        html = self.env.get_template(template).render(
            locale=locale, locales=self.locales, **callables, **context
        )
        return HTMLResponse(html, status_code=status_code, headers=headers, background=background)
