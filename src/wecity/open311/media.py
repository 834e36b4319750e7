"""Photos attached to Open311 requests: checked and written before the transaction, recorded inside it."""

from __future__ import annotations

import asyncio
from datetime import datetime

from sqlalchemy.engine import Connection

from wecity.core.settings import Settings
from wecity.media.images import CheckedImage, inspect_image
from wecity.media.service import MediaRecord, insert_record, media_store, write_files
from wecity.media.service import discard as discard_files


async def check_all(files: list[bytes], settings: Settings) -> list[CheckedImage]:
    """Inspect and re-encode every upload (CPU work, off the event loop); the first bad one refuses all."""
    if not files:
        return []
    return await asyncio.to_thread(
        lambda: [inspect_image(data, max_bytes=settings.max_upload_bytes, max_pixels=settings.max_image_pixels)
                 for data in files])


def first_location(checked: list[CheckedImage]) -> tuple[float, float] | None:
    for image in checked:
        if image.gps is not None:
            return image.gps.lat, image.gps.long
    return None


class StoredFiles:
    def __init__(self, settings: Settings, records: list[MediaRecord]) -> None:
        self.settings = settings
        self.records = records


async def save_files(checked: list[CheckedImage], settings: Settings, *, now: datetime) -> StoredFiles:
    """Write the files durably (fsync) in a worker thread, so the database writer never waits on disk."""
    if not checked:
        return StoredFiles(settings, [])
    store = media_store(settings)

    def write() -> list[MediaRecord]:
        done: list[MediaRecord] = []
        try:
            for image in checked:
                done.append(write_files(store, image, now=now))
        except BaseException:
            for record in done:
                discard_files(store, record)
            raise
        return done

    return StoredFiles(settings, await asyncio.to_thread(write))


def record_all(conn: Connection, stored: StoredFiles, *, now: datetime) -> list[str]:
    return [insert_record(conn, record).id for record in stored.records]


def discard(stored: StoredFiles) -> None:
    if stored.records:
        store = media_store(stored.settings)
        for record in stored.records:
            discard_files(store, record)
