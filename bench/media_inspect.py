"""Photo intake and serving: inspect_image on phone-sized photos, bomb refusal, GET /media over HTTP."""

from __future__ import annotations

import io
import random
import struct
import time
import zlib
from collections.abc import Callable
from typing import Any

from bench import ceilings
from bench._common import free_port, make_demo_city, row, run_wrk, wecity_server, workdir

LIMITS = {"max_bytes": 20 * 1024 * 1024, "max_pixels": 60_000_000}


def _photo(width: int, height: int, seed: int = 1) -> bytes:
    """A JPEG at quality 92 with a phone photo's smooth areas and sensor noise (not a flat colour,
    which would flatter every codec)."""
    from PIL import Image

    rnd = random.Random(seed)
    small = Image.frombytes("RGB", (40, 30), bytes(rnd.randrange(256) for _ in range(40 * 30 * 3)))
    base = small.resize((width, height), Image.Resampling.BICUBIC)
    noise = Image.effect_noise((width, height), 12).convert("RGB")
    out = io.BytesIO()
    Image.blend(base, noise, 0.15).save(out, "JPEG", quality=92)
    return out.getvalue()


def _png_bomb(width: int, height: int) -> bytes:
    """A few hundred bytes declaring width x height grey pixels."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 4096))
            + chunk(b"IEND", b""))


def _best_seconds(fn: Callable[[], object], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def _decode_encode(data: bytes) -> None:
    """The least any re-encoding must do: decode the pixels and encode them once at quality 85."""
    from PIL import Image

    image = Image.open(io.BytesIO(data))
    image.load()
    image.save(io.BytesIO(), "JPEG", quality=85)


def run() -> list[dict[str, Any]]:
    from wecity.core.errors import UnsupportedMedia
    from wecity.media.service import inspect_image

    rows: list[dict[str, Any]] = []
    for width, height, label in ((4000, 3000, "12 MP"), (2048, 1536, "3 MP")):
        data = _photo(width, height)
        inspect = _best_seconds(lambda d=data: inspect_image(d, **LIMITS), 5)
        floor = _best_seconds(lambda d=data: _decode_encode(d), 5)
        rows.append(row(f"inspect_image, {label} JPEG ({len(data) / 1e6:.1f} MB), 1 core", 1 / inspect,
                        "photos/s", ceiling=1 / floor, ceiling_unit="photos/s",
                        note=f"{inspect * 1000:.0f} ms per photo (checks, EXIF, orientation, sRGB, re-encode with "
                             f"optimised tables, thumbnail); ceiling: Pillow decode + one quality-85 encode, "
                             f"{floor * 1000:.0f} ms; best of 5"))

    from PIL import Image

    bomb = _png_bomb(50_000, 50_000)
    n = 2000

    def refuse_all() -> None:
        for _ in range(n):
            try:
                inspect_image(bomb, **LIMITS)
            except UnsupportedMedia:
                pass

    def header_only() -> None:
        for _ in range(n):
            try:
                Image.open(io.BytesIO(bomb))
            except Image.DecompressionBombError:
                pass

    rows.append(row("refuse a 50,000 x 50,000 PNG bomb, 1 core", n / _best_seconds(refuse_all, 3), "refusals/s",
                    ceiling=n / _best_seconds(header_only, 3), ceiling_unit="header parses/s",
                    note="refused from the header; ceiling: Pillow's Image.open alone on the same bytes"))

    with workdir("media") as tmp:
        city = make_demo_city(tmp)
        from wecity.core.clock import Clock
        from wecity.core.db import Database
        from wecity.media.service import store_image
        from wecity.media.store import LocalMediaStore

        checked = inspect_image(_photo(4000, 3000), **LIMITS)
        db = Database(city.url, pool_size=1)
        store = LocalMediaStore(tmp / "media")
        record = db.write_sync(lambda conn: store_image(conn, store, checked, now=Clock().now()))
        db.close()
        bare = ceilings.bare_asgi_get()
        with wecity_server(port=free_port(), env=city.env, log_path=tmp / "server.log") as server:
            health = 'request = function() return wrk.format("GET", "/healthz") end\n'
            run_wrk(server.url, health, duration=1)
            app_floor = run_wrk(server.url, health)
            for path, what in ((f"/media/{record.id}/thumbnail", f"thumbnail, {record.thumb_bytes / 1e3:.0f} kB"),
                               (f"/media/{record.id}", f"photo, {record.bytes / 1e6:.1f} MB")):
                lua = f'request = function() return wrk.format("GET", "{path}") end\n'
                run_wrk(server.url, lua, duration=1)  # warm-up
                http = run_wrk(server.url, lua)
                rows.append(row(f"GET /media/{{id}}{'/thumbnail' if 'thumb' in what else ''} ({what}, SQLite)",
                                http.rps, "req/s", ceiling=bare.rps, ceiling_unit="req/s",
                                note=f"{http.describe()}; ceiling (a) bare ASGI: p99 {bare.p99_ms:.1f} ms; the same"
                                     f" server's GET /healthz: {app_floor.rps:,.0f} req/s"))
    return rows


def main() -> None:
    from bench.run import print_rows

    print_rows(run())


if __name__ == "__main__":
    main()
