"""Photos sent with a request: checked and written before the transaction, recorded inside it.

Every channel that takes photos (a citizen's report, a staff member's evidence, the API upload) uses
`staged`:

    async with uploads.staged(raw_files, ctx, now=now) as photos:
        await ctx.db.write(lambda conn: use(conn, photos.record(conn)))
        photos.keep()

Decoding and re-encoding run in a pool of their own (WECITY_IMAGE_WORKERS threads), so a burst of large
photos waits its turn there instead of taking the threads that serve database reads; the files are written (fsync) before the database
transaction so the writer never waits on disk, and they are removed again unless `keep()` was called
after the rows committed. A crash in between leaves files without rows, which the media sweep removes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import datetime

from sqlalchemy.engine import Connection

from wecity.core.context import AppContext
from wecity.core.settings import Settings
from wecity.media.images import CheckedImage, inspect_image
from wecity.media.service import MediaRecord, insert_record, media_store, write_files
from wecity.media.service import discard as discard_files

_POOL = "media.decode_pool"


def decode_pool(ctx: AppContext) -> ThreadPoolExecutor:
    """This app's pool for decoding images, made when first needed."""
    pool: ThreadPoolExecutor | None = ctx.services.get(_POOL)
    if pool is None:
        pool = ctx.services.setdefault(_POOL, ThreadPoolExecutor(max_workers=ctx.settings.image_workers,
                                                                 thread_name_prefix="wecity-image"))
    return pool


async def check_all(files: list[bytes], ctx: AppContext) -> list[CheckedImage]:
    """Inspect and re-encode every upload (CPU work, in the decode pool); the first bad one refuses all."""
    if not files:
        return []
    settings = ctx.settings
    return await asyncio.get_running_loop().run_in_executor(decode_pool(ctx), lambda: [
        inspect_image(data, max_bytes=settings.max_upload_bytes, max_pixels=settings.max_image_pixels)
        for data in files])


class StagedPhotos:
    """Checked photos whose files are in the store, waiting for their rows."""

    def __init__(self, settings: Settings, checked: list[CheckedImage], records: list[MediaRecord]) -> None:
        self.settings = settings
        self.checked = checked
        self.records = records
        self.kept = False

    def __bool__(self) -> bool:
        return bool(self.records)

    @property
    def location(self) -> tuple[float, float] | None:
        """The first photo's EXIF GPS position (WGS-84), if any photo has one."""
        for image in self.checked:
            if image.gps is not None:
                return image.gps.lat, image.gps.long
        return None

    def record(self, conn: Connection) -> list[str]:
        """Insert the photos' rows in the caller's transaction; their media ids, in upload order."""
        return [insert_record(conn, record).id for record in self.records]

    def keep(self) -> None:
        """The rows committed: the files stay."""
        self.kept = True

    def discard(self) -> None:
        if self.records and not self.kept:
            store = media_store(self.settings)
            for record in self.records:
                discard_files(store, record)
        self.records = []


async def _write_files(checked: list[CheckedImage], settings: Settings, now: datetime) -> list[MediaRecord]:
    if not checked:
        return []
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

    return await asyncio.to_thread(write)


@asynccontextmanager
async def staged(files: list[bytes], ctx: AppContext, *, now: datetime) -> AsyncIterator[StagedPhotos]:
    """Check and store `files`; on leaving, remove them again unless `keep()` was called."""
    settings = ctx.settings
    checked = await check_all(files, ctx)
    photos = StagedPhotos(settings, checked, await _write_files(checked, settings, now))
    try:
        yield photos
    finally:
        photos.discard()
