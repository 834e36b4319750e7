"""Where media bytes live: the `MediaStore` protocol and its local-disk implementation."""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from wecity.core.errors import NotFound

# Keys are ours, never a client's: a media id (32 base32 characters) and an optional suffix.
KEY_PATTERN = re.compile(r"^[a-z2-7]{32}(\.thumb)?$")


class MediaStore(Protocol):
    """Durable bytes by key. `put` is atomic: after it returns the bytes survive a crash; if it fails,
    nothing is left under the key."""

    def put(self, key: str, data: bytes) -> None: ...

    def read(self, key: str) -> bytes: ...

    def delete(self, key: str) -> None: ...

    def keys(self) -> Iterator[tuple[str, datetime]]:
        """Every stored key with the time it was written (for the orphan sweep)."""
        ...


def check_key(key: str) -> str:
    if not KEY_PATTERN.match(key):
        raise ValueError(f"not a media key: {key!r}")
    return key


class LocalMediaStore:
    """Files under one directory, fanned out by the key's first two characters.

    Writes go to a temporary file in the same directory tree, are fsynced, then renamed into place, and
    the directory is fsynced, so a key is either absent or complete even after a power cut.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._tmp = self.root / "tmp"

    def path(self, key: str) -> Path:
        check_key(key)
        return self.root / key[:2] / key

    def put(self, key: str, data: bytes) -> None:
        final = self.path(key)
        self._tmp.mkdir(parents=True, exist_ok=True)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._tmp / f"{key}.{secrets.token_hex(8)}.part"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, final)
            _fsync_dir(final.parent)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def read(self, key: str) -> bytes:
        try:
            return self.path(key).read_bytes()
        except FileNotFoundError:
            raise NotFound(f"no media {key}", message_zh=f"没有该媒体文件 {key}", code="media.not_found") from None

    def delete(self, key: str) -> None:
        path = self.path(key)
        try:
            path.unlink()
        except FileNotFoundError:
            return
        _fsync_dir(path.parent)

    def keys(self) -> Iterator[tuple[str, datetime]]:
        if not self.root.is_dir():
            return
        for folder in sorted(self.root.iterdir()):
            if folder == self._tmp or not folder.is_dir():
                continue
            for path in sorted(folder.iterdir()):
                if KEY_PATTERN.match(path.name):
                    yield path.name, datetime.fromtimestamp(path.stat().st_mtime, UTC)

    def stale_temporaries(self, older_than: datetime) -> Iterator[Path]:
        """Temporary files a crashed writer left behind."""
        if not self._tmp.is_dir():
            return
        for path in self._tmp.iterdir():
            if datetime.fromtimestamp(path.stat().st_mtime, UTC) < older_than:
                yield path


def _fsync_dir(path: Path) -> None:
    # The rename (or unlink) is durable only once the directory entry is on disk.
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
