"""Keep the zh_CN catalogue in step with the code: `python -m wecity.web.catalogue` adds new messages."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from babel.messages.catalog import Catalog
from babel.messages.extract import extract
from babel.messages.pofile import read_po, write_po
from jinja2.ext import babel_extract

from wecity import __version__

WEB_DIR = Path(__file__).parent
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}


def extracted_messages() -> Iterator[tuple[str, str, int]]:
    """(msgid, file, line) of every message the portal shows: templates and Python modules."""
    for path in sorted(WEB_DIR.rglob("*")):
        method: Any
        if path.suffix == ".html" and "templates" in path.parts:
            method = babel_extract
        elif path.suffix == ".py" and path.name != "catalogue.py":
            method = "python"
        else:
            continue
        with path.open("rb") as f:
            for lineno, message, _comments, _context in extract(method, f, keywords=KEYWORDS):
                msgid = message[0] if isinstance(message, tuple) else message
                yield msgid, str(path.relative_to(WEB_DIR)), lineno


def update(locale: str = "zh_CN") -> list[str]:
    """Add new messages to the locale's .po (untranslated), drop ones no longer used; returns the new ones."""
    path = WEB_DIR / "locale" / locale / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as f:
        old = read_po(f, locale=locale)
    catalog = Catalog(locale=locale, project="WeCity", version=__version__, charset="utf-8", fuzzy=False,
                      copyright_holder="WeCity contributors", msgid_bugs_address="",
                      last_translator="WeCity contributors", language_team="WeCity zh_CN",
                      header_comment="# 简体中文 translations of the WeCity portal. English msgids are the source.\n"
                                     "# Add new messages with `python -m wecity.web.catalogue`, then translate them.")
    catalog.revision_date = old.revision_date
    added = []
    for msgid, filename, lineno in extracted_messages():
        existing = old.get(msgid)
        if msgid in catalog:
            catalog[msgid].locations.append((filename, lineno))
            continue
        catalog.add(msgid, existing.string if existing else "", locations=[(filename, lineno)])
        if not existing:
            added.append(msgid)
    with path.open("wb") as f:
        write_po(f, catalog, width=0, sort_output=True, omit_header=False)
    return added


if __name__ == "__main__":
    new = update()
    print(f"{len(new)} new message(s) to translate / 条新消息待翻译", *new, sep="\n  ")
    sys.exit(0)
