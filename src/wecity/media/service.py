"""The media domain's verbs: check an upload, store it in a caller's transaction, find it, clean up."""

from __future__ import annotations

import base64
import logging
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.core.errors import NotFound
from wecity.core.settings import Settings
from wecity.media.exif import GpsPoint
from wecity.media.images import CheckedImage, inspect_image
from wecity.media.models import media
from wecity.media.store import KEY_PATTERN, LocalMediaStore, MediaStore

__all__ = [
    "CheckedImage", "GpsPoint", "LocalMediaStore", "MediaRecord", "MediaStore", "claim_media", "discard",
    "get_media", "insert_record", "inspect_image", "is_media_id", "link_media", "media_for_ref", "media_store",
    "media_url", "new_media_id", "read_content", "store_image", "sweep_orphans", "write_files",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MediaRecord:
    """A stored image: its row in `media`, and the keys of its two files in the MediaStore."""

    id: str
    kind: str
    content_type: str
    width: int
    height: int
    bytes: int
    sha256: str
    thumb_content_type: str
    thumb_width: int
    thumb_height: int
    thumb_bytes: int
    thumb_sha256: str
    source_type: str
    gps: GpsPoint | None
    ref: str | None
    owner: str | None
    created_at: datetime
    phash: str | None = None

    @property
    def key(self) -> str:
        return self.id

    @property
    def thumb_key(self) -> str:
        return f"{self.id}.thumb"


def media_store(settings: Settings) -> MediaStore:
    """The store the settings choose (today: the local disk under WECITY_MEDIA_DIR)."""
    return LocalMediaStore(settings.media_dir)


def new_media_id() -> str:
    """160 random bits as 32 lowercase base32 characters: unguessable, URL- and file-name-safe."""
    return base64.b32encode(secrets.token_bytes(20)).decode("ascii").lower()


def is_media_id(value: str) -> bool:
    return len(value) == 32 and KEY_PATTERN.match(value) is not None


def write_files(store: MediaStore, checked: CheckedImage, *, now: datetime, ref: str | None = None,
                owner: str | None = None) -> MediaRecord:
    """Write the image and its thumbnail durably; no row yet. Nothing is left behind if this fails.

    Call it outside a database transaction (file fsyncs should not hold the database's writer), then
    `insert_record` inside the transaction, and `discard` if that transaction does not commit.
    """
    record = MediaRecord(
        id=new_media_id(), kind="image", content_type=checked.content_type, width=checked.width,
        height=checked.height, bytes=len(checked.content), sha256=checked.sha256,
        thumb_content_type=checked.thumb_content_type, thumb_width=checked.thumb_width,
        thumb_height=checked.thumb_height, thumb_bytes=len(checked.thumbnail), thumb_sha256=checked.thumb_sha256,
        source_type=checked.source_type, gps=checked.gps, ref=ref, owner=owner, created_at=now,
        phash=checked.phash,
    )
    try:
        store.put(record.key, checked.content)
        store.put(record.thumb_key, checked.thumbnail)
    except BaseException:
        discard(store, record)
        raise
    return record


def insert_record(conn: Connection, record: MediaRecord) -> MediaRecord:
    """Insert the row of files `write_files` wrote, in the caller's transaction."""
    conn.execute(media.insert().values(
        id=record.id, kind=record.kind, content_type=record.content_type, width=record.width,
        height=record.height, bytes=record.bytes, sha256=record.sha256,
        thumb_content_type=record.thumb_content_type, thumb_width=record.thumb_width,
        thumb_height=record.thumb_height, thumb_bytes=record.thumb_bytes, thumb_sha256=record.thumb_sha256,
        source_type=record.source_type, gps_lat=record.gps.lat if record.gps else None,
        gps_long=record.gps.long if record.gps else None, ref=record.ref, owner=record.owner,
        created_at=record.created_at, phash=record.phash,
    ))
    return record


def store_image(conn: Connection, store: MediaStore, checked: CheckedImage, *, now: datetime,
                ref: str | None = None, owner: str | None = None) -> MediaRecord:
    """Write the files, then insert the row in the caller's transaction on `conn`.

    If the insert fails the files are removed here. If the caller's transaction rolls back later, the
    caller calls `discard(store, record)`; a crash in between is cleaned up by `sweep_orphans`.
    """
    record = write_files(store, checked, now=now, ref=ref, owner=owner)
    try:
        return insert_record(conn, record)
    except BaseException:
        discard(store, record)
        raise


def discard(store: MediaStore, record: MediaRecord | str) -> None:
    """Remove a record's files after its transaction rolled back. Never raises (call it in `except`)."""
    media_id = record if isinstance(record, str) else record.id
    for key in (media_id, f"{media_id}.thumb"):
        try:
            store.delete(key)
        except Exception:  # the sweep will catch what is left; the caller's own error matters more
            log.warning("could not discard media file %s", key, exc_info=True)


def link_media(conn: Connection, media_ids: Iterable[str], ref: str) -> None:
    """Attach unattached media (or media already attached to `ref`) to `ref`, in the caller's transaction.

    Raises NotFound if any id is unknown or belongs to something else.
    """
    ids = sorted(set(media_ids))
    if not ids:
        return
    if not all(is_media_id(i) for i in ids):
        raise _not_found(", ".join(i for i in ids if not is_media_id(i)))
    done = conn.execute(
        media.update()
        .where(media.c.id.in_(ids), sa.or_(media.c.ref.is_(None), media.c.ref == ref))
        .values(ref=ref)
    ).rowcount
    if done != len(ids):
        raise _not_found(", ".join(ids))


def claim_media(conn: Connection, media_ids: Iterable[str], ref: str) -> None:
    """Make media that belong to nothing yet `ref`'s, in the caller's transaction (those that belong to
    something keep it; unknown ids are passed over). Call it in the transaction that stores them, before
    their links are given out: a record once served is kept in memory with the ref it had."""
    ids = [i for i in set(media_ids) if is_media_id(i)]
    if ids:
        conn.execute(media.update().where(media.c.id.in_(ids), media.c.ref.is_(None)).values(ref=ref))


def get_media(conn: Connection, media_id: str) -> MediaRecord | None:
    if not is_media_id(media_id):
        return None
    row = conn.execute(sa.select(media).where(media.c.id == media_id)).mappings().first()
    return _record(row) if row else None


def media_for_ref(conn: Connection, ref: str) -> list[MediaRecord]:
    rows = conn.execute(sa.select(media).where(media.c.ref == ref).order_by(media.c.created_at, media.c.id))
    return [_record(r) for r in rows.mappings()]


def read_content(store: MediaStore, record: MediaRecord, *, thumbnail: bool = False) -> bytes:
    return store.read(record.thumb_key if thumbnail else record.key)


def media_url(base: str | Settings | None, media_id: str, *, thumbnail: bool = False) -> str:
    """Where a medium is served: absolute under `base` (e.g. the request's base URL), else a path.

    A Settings may carry the public address as `public_url` (or WECITY_PUBLIC_URL in `extra`).
    """
    if isinstance(base, Settings):
        base = getattr(base, "public_url", None) or base.extra.get("WECITY_PUBLIC_URL")
    path = f"/media/{media_id}" + ("/thumbnail" if thumbnail else "")
    return (base.rstrip("/") + path) if base else path


def sweep_orphans(conn: Connection, store: MediaStore, *, older_than: datetime) -> list[str]:
    """Delete files written before `older_than` that no `media` row refers to; return their keys.

    Such files come from transactions that rolled back without `discard`, or a crash between writing
    the files and committing. `older_than` must leave room for the slowest transaction in flight
    (e.g. now minus one hour), since files are written before their row commits.
    """
    candidates: dict[str, list[str]] = {}
    for key, written in store.keys():
        if written < older_than:
            candidates.setdefault(key.split(".", 1)[0], []).append(key)
    removed: list[str] = []
    ids = sorted(candidates)
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        known = set(conn.execute(sa.select(media.c.id).where(media.c.id.in_(chunk))).scalars())
        for media_id in chunk:
            if media_id not in known:
                for key in candidates[media_id]:
                    store.delete(key)
                    removed.append(key)
    stale = getattr(store, "stale_temporaries", None)
    if stale is not None:
        for path in list(stale(older_than)):
            path.unlink(missing_ok=True)
            removed.append(f"tmp/{path.name}")
    return removed


def _not_found(what: str) -> NotFound:
    return NotFound(f"no such media: {what}", message_zh=f"没有该媒体文件：{what}", code="media.not_found")


def _record(row: Any) -> MediaRecord:
    gps = GpsPoint(row["gps_lat"], row["gps_long"]) if row["gps_lat"] is not None else None
    return MediaRecord(
        id=row["id"], kind=row["kind"], content_type=row["content_type"], width=row["width"],
        height=row["height"], bytes=row["bytes"], sha256=row["sha256"],
        thumb_content_type=row["thumb_content_type"], thumb_width=row["thumb_width"],
        thumb_height=row["thumb_height"], thumb_bytes=row["thumb_bytes"], thumb_sha256=row["thumb_sha256"],
        source_type=row["source_type"], gps=gps, ref=row["ref"], owner=row["owner"],
        created_at=row["created_at"], phash=row["phash"],
    )
