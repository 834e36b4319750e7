"""HTTP adapter of the media domain: serves stored images and their thumbnails (to anyone, or, for media
that belong to something other than a report or a case, to whom its owner allows: wecity.media.access)."""

from __future__ import annotations

import asyncio
from collections import OrderedDict

from fastapi import APIRouter, Request
from fastapi.responses import Response

from wecity.core.context import AppContext
from wecity.core.errors import NotFound
from wecity.core.http import Ctx, client_address
from wecity.identity.deps import optional_citizen, optional_staff
from wecity.media.access import Viewing, is_public, may_view
from wecity.media.service import MediaRecord, MediaStore, get_media, is_media_id, media_store, read_content

router = APIRouter(prefix="/media", tags=["media"])

# A stored image never changes under its id, so clients and proxies may keep it for a year.
CACHE_CONTROL = "public, max-age=31536000, immutable"
# Personal data (an application's material): no cache keeps it, shared or the browser's own.
PRIVATE_CACHE_CONTROL = "private, no-store"
_EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png"}


async def on_startup(ctx: AppContext) -> None:
    ctx.services.setdefault("media_store", media_store(ctx.settings))


def _store(ctx: AppContext) -> MediaStore:
    store: MediaStore | None = ctx.services.get("media_store")
    if store is None:
        store = ctx.services["media_store"] = media_store(ctx.settings)
    return store


class _RecordCache:
    """Recently served records. A stored image never changes under its id, so a record read once is
    good for as long as the row exists; a page of thumbnails then costs no database reads. (Whom a medium
    belongs to, its ref, is set in the transaction that stores it: wecity.media.service.claim_media.)"""

    def __init__(self, size: int = 10_000) -> None:
        self.size = size
        self.records: OrderedDict[str, MediaRecord] = OrderedDict()

    def get(self, media_id: str) -> MediaRecord | None:
        record = self.records.get(media_id)
        if record is not None:
            self.records.move_to_end(media_id)
        return record

    def put(self, record: MediaRecord) -> None:
        self.records[record.id] = record
        if len(self.records) > self.size:
            self.records.popitem(last=False)


async def _record(ctx: AppContext, media_id: str) -> MediaRecord | None:
    # The id is checked against its strict pattern before it reaches the database or the disk, so no
    # path can be smuggled through it.
    if not is_media_id(media_id):
        return None
    cache: _RecordCache = ctx.services.setdefault("media_record_cache", _RecordCache())
    record = cache.get(media_id)
    if record is None:
        record = await ctx.db.read(get_media, media_id)
        if record is not None:
            cache.put(record)
    return record


def _not_found(media_id: str) -> NotFound:
    return NotFound(f"no such media: {media_id}", message_zh=f"没有该媒体文件：{media_id}", code="media.not_found")


async def _may_see(ctx: AppContext, request: Request, record: MediaRecord) -> bool:
    """Whether the caller may see a medium that is not public: asked of its owner (wecity.media.access) in
    a transaction of its own, which puts the look on the audit log. Nobody signed in is refused without
    asking."""
    staff = await optional_staff(request)
    phone = await optional_citizen(request)
    if staff is None and phone is None:
        return False
    assert record.ref is not None  # public otherwise
    viewing = Viewing(media_id=record.id, ref=record.ref, staff=staff, citizen_phone=phone,
                      source_address=client_address(request), now=ctx.clock.now())
    return bool(await ctx.db.write(lambda conn: may_view(conn, ctx.registry.events, viewing)))


async def _serve(ctx: AppContext, request: Request, media_id: str, *, thumbnail: bool) -> Response:
    record = await _record(ctx, media_id)
    if record is None:
        raise _not_found(media_id)
    public = is_public(record.ref)
    # Refused, a medium that is not public is as unknown as a wrong id (404): the id tells nothing more.
    if not public and not await _may_see(ctx, request, record):
        raise _not_found(media_id)
    digest = record.thumb_sha256 if thumbnail else record.sha256
    content_type = record.thumb_content_type if thumbnail else record.content_type
    etag = f'"{digest}"'
    headers = {
        "Cache-Control": CACHE_CONTROL if public else PRIVATE_CACHE_CONTROL,
        "ETag": etag,
        "X-Content-Type-Options": "nosniff",
        # Opened directly, the image may run nothing and load nothing.
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Content-Disposition": f'inline; filename="{record.id}{".thumb" if thumbnail else ""}.'
                               f'{_EXTENSIONS.get(content_type, "bin")}"',
    }
    if etag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers=headers)
    body = await asyncio.to_thread(read_content, _store(ctx), record, thumbnail=thumbnail)
    if request.method == "HEAD":
        return Response(status_code=200, headers={**headers, "Content-Length": str(len(body))},
                        media_type=content_type)
    return Response(body, media_type=content_type, headers=headers)


_IMAGE_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"content": {"image/jpeg": {}, "image/png": {}}, "description": "The image"},
    404: {"content": {"application/problem+json": {}}, "description": "No such media"},
}


@router.get("/{media_id}", summary="A stored image (re-encoded, no metadata)", response_class=Response,
            responses=_IMAGE_RESPONSES)
async def get_image(ctx: Ctx, request: Request, media_id: str) -> Response:
    return await _serve(ctx, request, media_id, thumbnail=False)


@router.get("/{media_id}/thumbnail", summary="A stored image's thumbnail", response_class=Response,
            responses=_IMAGE_RESPONSES)
async def get_thumbnail(ctx: Ctx, request: Request, media_id: str) -> Response:
    return await _serve(ctx, request, media_id, thumbnail=True)


@router.head("/{media_id}", include_in_schema=False)
async def head_image(ctx: Ctx, request: Request, media_id: str) -> Response:
    return await _serve(ctx, request, media_id, thumbnail=False)


@router.head("/{media_id}/thumbnail", include_in_schema=False)
async def head_thumbnail(ctx: Ctx, request: Request, media_id: str) -> Response:
    return await _serve(ctx, request, media_id, thumbnail=True)
