"""The zh_CN catalogue: every message the portal shows is translated, and it loads without a compile step."""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.pofile import read_po

from wecity.web.catalogue import extracted_messages
from wecity.web.i18n import catalogue_path, translations

PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def _catalog():  # noqa: ANN202
    with catalogue_path("zh_CN").open("rb") as f:
        return read_po(f, locale="zh_CN")


def test_every_message_in_the_code_is_in_the_catalogue_and_translated() -> None:
    catalog = _catalog()
    missing, untranslated = [], []
    for msgid, filename, line in extracted_messages():
        message = catalog.get(msgid)
        if message is None:
            missing.append(f"{filename}:{line} {msgid!r}")
        elif not message.string or message.fuzzy:
            untranslated.append(f"{filename}:{line} {msgid!r}")
    assert not missing, "run `python -m wecity.web.catalogue` and translate:\n" + "\n".join(missing)
    assert not untranslated, "untranslated or fuzzy zh_CN messages:\n" + "\n".join(untranslated)


def test_no_catalogue_entry_is_untranslated_or_fuzzy() -> None:
    bad = [m.id for m in _catalog() if m.id and (not m.string or m.fuzzy)]
    assert not bad, bad


def test_translations_keep_their_placeholders() -> None:
    for message in _catalog():
        if message.id:
            assert sorted(PLACEHOLDER.findall(str(message.id))) == sorted(PLACEHOLDER.findall(str(message.string))), message.id


def test_catalogue_loads_from_the_po_file_alone() -> None:
    # No .mo is shipped or needed: a fresh clone translates straight from the .po.
    assert not list(Path(str(catalogue_path("zh_CN"))).parent.glob("*.mo"))
    translations.cache_clear()
    assert translations("zh_CN").gettext("Report a problem") == "我要反映问题"
    assert translations("en").gettext("Report a problem") == "Report a problem"
