"""The local-disk store: atomic, durable writes and keys that cannot name a path outside it."""

from __future__ import annotations

from pathlib import Path

import pytest

from wecity.core.errors import NotFound
from wecity.media.service import new_media_id
from wecity.media.store import LocalMediaStore

from .conftest import files_under


def test_put_read_delete(tmp_path: Path) -> None:
    store = LocalMediaStore(tmp_path / "media")
    key = new_media_id()
    store.put(key, b"abc")
    store.put(key, b"abcd")  # replaced atomically
    assert store.read(key) == b"abcd"
    assert [k for k, _ in store.keys()] == [key]
    store.delete(key)
    store.delete(key)  # already gone: fine
    with pytest.raises(NotFound):
        store.read(key)
    assert files_under(tmp_path / "media") == []


@pytest.mark.parametrize("key", ["../x", "/etc/passwd", "..", "", "a" * 31, "A" * 32, "a" * 32 + "/..",
                                 "a" * 32 + ".thumb/../../x", "a" * 32 + "\x00"])
def test_keys_outside_the_pattern_are_refused(tmp_path: Path, key: str) -> None:
    store = LocalMediaStore(tmp_path)
    with pytest.raises(ValueError):
        store.put(key, b"x")
    with pytest.raises(ValueError):
        store.read(key)


def test_a_failed_write_leaves_no_temporary_file(tmp_path: Path) -> None:
    store = LocalMediaStore(tmp_path)
    with pytest.raises(TypeError):
        store.put(new_media_id(), "not bytes")  # type: ignore[arg-type]
    assert files_under(tmp_path) == []
