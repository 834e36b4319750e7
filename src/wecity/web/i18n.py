"""Message catalogues: English msgids, 简体中文 translations read from the .po file at start."""

from __future__ import annotations

import gettext
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from io import BytesIO

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALES = ("zh_CN", "en")
DOMAIN = "messages"


def catalogue_path(locale: str) -> Traversable:
    return resources.files("wecity.web").joinpath(f"locale/{locale}/LC_MESSAGES/{DOMAIN}.po")


@cache
def translations(locale: str) -> gettext.NullTranslations:
    """The locale's translations; English (the msgids) needs none.

    The .po file is compiled in memory, so a fresh clone or an installed wheel works without a
    compile step and a stale .mo can never shadow an edited .po.
    """
    if locale == "en":
        return gettext.NullTranslations()
    with catalogue_path(locale).open("rb") as f:
        catalog = read_po(f, locale=locale)
    buffer = BytesIO()
    # Fuzzy entries are not trusted translations: leave them out, so they show in English (and the
    # i18n check test fails on them).
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


def N_(message: str) -> str:
    """Mark a message for extraction where it is defined; it is translated where it is shown."""
    return message


def gettext_for(locale: str) -> gettext.NullTranslations:
    return translations(locale if locale in LOCALES else "zh_CN")
