"""The base map over HTTP: its MapLibre style, and its PMTiles file read by byte ranges.

Both are public, as the streets of the city are; each request counts against the `basemap` rate limit of
its client address before any file is read. A browser asks for the archive's header and then, as the map
moves, for the directories and tiles it needs: one range a request, at most MAX_RANGE_BYTES, so no single
request reads the whole map. A client without a Range header gets the whole file only while it is that small.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import anyio
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from wecity.core.errors import NotFound, ValidationFailed, WeCityError, error_for_status
from wecity.core.http import Ctx, client_address, problem_response, request_locale
from wecity.geo.basemap import Basemap, current_basemap
from wecity.geo.basemap_style import style

router = APIRouter(prefix="/api/v1/basemap", tags=["geo"])

MAX_RANGE_BYTES = 2 * 1024 * 1024
PMTILES_TYPE = "application/vnd.pmtiles"
_RANGE = re.compile(r"bytes=(\d{0,15})-(\d{0,15})")


def _basemap(ctx: Ctx) -> Basemap:
    basemap = current_basemap(ctx.settings.var_dir, ctx.services)
    if basemap is None:
        raise NotFound("no base map has been imported (wecity city import-basemap)",
                       message_zh="尚未导入底图（wecity city import-basemap）", code="basemap.none")
    return basemap


class RangeNotSatisfiable(Exception):
    """A Range the file cannot answer: 416 with the file's size in Content-Range."""


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The one byte range asked for, as (first, last) inclusive, or None for the whole file.

    Several ranges, another unit and ranges past the end are not satisfiable; an explicit range longer
    than MAX_RANGE_BYTES is refused, an open one ("bytes=N-") is cut to that length (Content-Range says
    what was sent)."""
    if header is None:
        if size > MAX_RANGE_BYTES:
            raise ValidationFailed(
                f"the base map is read by byte ranges (Range: bytes=first-last) of at most {MAX_RANGE_BYTES} bytes",
                message_zh=f"底图须按字节范围读取（Range: bytes=起-止），每次不超过 {MAX_RANGE_BYTES} 字节",
                code="basemap.range_required")
        return None
    match = _RANGE.fullmatch(header.strip())
    if match is None or not (match[1] or match[2]):
        raise RangeNotSatisfiable(header)
    if not match[1]:  # the last N bytes
        suffix = int(match[2])
        if suffix == 0:
            raise RangeNotSatisfiable(header)
        first, last = max(0, size - suffix), size - 1
    else:
        first = int(match[1])
        last = min(int(match[2]), size - 1) if match[2] else min(size - 1, first + MAX_RANGE_BYTES - 1)
        if match[2] and int(match[2]) < first:
            raise RangeNotSatisfiable(header)
    if first >= size:
        raise RangeNotSatisfiable(header)
    if last - first + 1 > MAX_RANGE_BYTES:
        raise ValidationFailed(f"a range may be at most {MAX_RANGE_BYTES} bytes",
                               message_zh=f"每次读取不超过 {MAX_RANGE_BYTES} 字节", code="basemap.range_too_large",
                               details={"max_bytes": MAX_RANGE_BYTES})
    return first, last


def _read(path: Path, first: int, length: int) -> bytes:
    with path.open("rb") as f:
        f.seek(first)
        return f.read(length)


@router.get("/style.json", summary="The base map's MapLibre style")
async def basemap_style(request: Request, ctx: Ctx,
                        lang: Literal["zh_CN", "en"] | None = Query(None, description="labels' language")) -> Response:
    """The platform's style over its imported base map, labels in `lang` (else the reader's language)."""
    await ctx.limits.hit("basemap", client_address(request) or "-")
    basemap = _basemap(ctx)
    body = style(basemap, lang or request_locale(request))
    return JSONResponse(body, headers={"Cache-Control": "no-cache"})


@router.get("/city.pmtiles", summary="The base map's tiles (PMTiles, read by byte ranges)",
            response_class=Response)
async def basemap_tiles(request: Request, ctx: Ctx) -> Response:
    """Byte ranges of the PMTiles archive, as MapLibre's `pmtiles` protocol asks for them."""
    await ctx.limits.hit("basemap", client_address(request) or "-")
    basemap = _basemap(ctx)
    headers = {"Accept-Ranges": "bytes", "ETag": basemap.etag, "Cache-Control": "no-cache"}
    try:
        wanted = byte_range(request.headers.get("range"), basemap.size)
    except RangeNotSatisfiable:
        error: WeCityError = error_for_status(416, "range not satisfiable", message_zh="请求的范围无法满足")
        response = problem_response(request, error)
        response.headers["Content-Range"] = f"bytes */{basemap.size}"
        return response
    first, last = wanted if wanted is not None else (0, basemap.size - 1)
    try:
        data = await anyio.to_thread.run_sync(_read, basemap.path, first, last - first + 1)
    except OSError:
        raise NotFound("the base map's file is gone", message_zh="底图文件已不存在", code="basemap.none") from None
    if wanted is None:
        return Response(data, media_type=PMTILES_TYPE, headers=headers)
    headers["Content-Range"] = f"bytes {first}-{first + len(data) - 1}/{basemap.size}"
    return Response(data, status_code=206, media_type=PMTILES_TYPE, headers=headers)
