"""Storing checked images in the caller's transaction, and leaving nothing behind when anything fails."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.core.errors import NotFound, UnsupportedMedia
from wecity.media import service
from wecity.media.models import media
from wecity.media.service import (
    CheckedImage,
    MediaRecord,
    discard,
    get_media,
    inspect_image,
    link_media,
    media_for_ref,
    media_url,
    store_image,
    sweep_orphans,
    write_files,
)
from wecity.media.store import LocalMediaStore

from ..conftest import SEED_TIME, City
from . import samples as s
from .conftest import files_under

LIMITS = {"max_bytes": 10 * 1024 * 1024, "max_pixels": 40_000_000}


def photo(gps: tuple[float, float] | None = (28.1960, 112.9770)) -> CheckedImage:
    return inspect_image(s.encode(s.picture(), "JPEG", exif=s.exif_bytes(gps=gps)), **LIMITS)


def rows(conn: Connection) -> list[str]:
    return list(conn.execute(sa.select(media.c.id)).scalars())


def test_store_image_writes_both_files_and_the_row_in_the_callers_transaction(
        city: City, store: LocalMediaStore) -> None:
    checked = photo()
    record = city.db.write_sync(lambda conn: store_image(conn, store, checked, now=SEED_TIME, ref="report:1"))
    assert len(record.id) == 32 and record.id.isalnum()
    assert store.read(record.key) == checked.content
    assert store.read(record.thumb_key) == checked.thumbnail
    assert hashlib.sha256(store.read(record.key)).hexdigest() == record.sha256
    again = city.db.read_sync(get_media, record.id)
    assert again == record
    assert again is not None and again.created_at == SEED_TIME and again.ref == "report:1"
    assert again.gps is not None and again.gps.lat == pytest.approx(28.196)
    assert sorted(files_under(city.settings.media_dir)) == sorted(
        [f"{record.id[:2]}/{record.id}", f"{record.id[:2]}/{record.id}.thumb"])
    assert city.db.read_sync(media_for_ref, "report:1") == [record]


def test_ids_are_random_even_for_the_same_photo(city: City, store: LocalMediaStore) -> None:
    checked = photo()
    a = city.db.write_sync(lambda conn: store_image(conn, store, checked, now=SEED_TIME))
    b = city.db.write_sync(lambda conn: store_image(conn, store, checked, now=SEED_TIME))
    assert a.id != b.id and a.sha256 == b.sha256


class Boom(Exception):
    pass


def test_a_rolled_back_transaction_plus_discard_leaves_nothing(city: City, store: LocalMediaStore) -> None:
    checked = photo()
    written: list[MediaRecord] = []

    def intake(conn: Connection) -> None:
        written.append(store_image(conn, store, checked, now=SEED_TIME, ref="report:2"))
        raise Boom("the report insert failed after the photo was stored")

    with pytest.raises(Boom):
        try:
            city.db.write_sync(intake)
        except Exception:
            discard(store, written[0])
            raise
    assert files_under(city.settings.media_dir) == []
    assert city.db.read_sync(rows) == []


def test_the_async_writer_path_rolls_back_and_discards_too(city: City, store: LocalMediaStore) -> None:
    checked = photo()

    def insert_then_fail(conn: Connection, record: MediaRecord) -> None:
        service.insert_record(conn, record)
        raise Boom("later statement failed")

    async def intake(fail: bool) -> MediaRecord:
        record = write_files(store, checked, now=SEED_TIME)  # outside the transaction, as the intake should
        try:
            await city.db.write(insert_then_fail if fail else service.insert_record, record)
        except Exception:
            discard(store, record)
            raise
        return record

    with pytest.raises(Boom):
        asyncio.run(intake(fail=True))
    assert files_under(city.settings.media_dir) == []
    assert city.db.read_sync(rows) == []
    ok = asyncio.run(intake(fail=False))
    assert city.db.read_sync(get_media, ok.id) == ok
    assert len(files_under(city.settings.media_dir)) == 2


def test_a_failing_insert_removes_the_files_it_wrote(city: City, store: LocalMediaStore,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    checked = photo()

    def insert_existing_id(conn: Connection, record: MediaRecord) -> MediaRecord:
        conn.execute(media.insert().values(id=record.id))  # NOT NULL columns missing: a real DB error
        return record

    monkeypatch.setattr(service, "insert_record", insert_existing_id)
    with pytest.raises(sa.exc.IntegrityError):
        city.db.write_sync(lambda conn: store_image(conn, store, checked, now=SEED_TIME))
    assert files_under(city.settings.media_dir) == []
    assert city.db.read_sync(rows) == []


class FailingThumbStore(LocalMediaStore):
    def put(self, key: str, data: bytes) -> None:
        if key.endswith(".thumb"):
            raise OSError("disk full")
        super().put(key, data)


def test_a_failing_file_write_leaves_no_file_and_no_row(city: City) -> None:
    store = FailingThumbStore(city.settings.media_dir)
    with pytest.raises(OSError, match="disk full"):
        city.db.write_sync(lambda conn: store_image(conn, store, photo(), now=SEED_TIME))
    assert files_under(city.settings.media_dir) == []
    assert city.db.read_sync(rows) == []


@pytest.mark.parametrize(("name", "data", "code"), [
    ("gif", s.encode(s.picture(), "GIF"), "media.unsupported_type"),
    ("svg", s.SVG, "media.unsupported_type"),
    ("truncated jpeg", s.encode(s.picture(), "JPEG")[:1500], "media.corrupt"),
    ("bomb", s.png_bomb(), "media.too_many_pixels"),
    ("animated webp", s.animated("WEBP"), "media.animated"),
    ("huge comments", s.jpeg_with_segments(s.encode(s.picture(), "JPEG"), 0xFE, b"x" * 60_000, 5),
     "media.metadata_too_large"),
])
def test_a_refused_upload_leaves_nothing_in_the_media_dir_or_table(
        city: City, store: LocalMediaStore, name: str, data: bytes, code: str) -> None:
    def intake(conn: Connection) -> MediaRecord:
        return store_image(conn, store, inspect_image(data, **LIMITS), now=SEED_TIME)

    with pytest.raises(UnsupportedMedia) as info:
        city.db.write_sync(intake)
    assert info.value.code == code, name
    assert files_under(city.settings.media_dir) == []
    assert city.db.read_sync(rows) == []


def test_sweep_removes_files_without_a_row_and_keeps_the_others(city: City, store: LocalMediaStore) -> None:
    checked = photo()
    kept = city.db.write_sync(lambda conn: store_image(conn, store, checked, now=SEED_TIME))
    orphan = write_files(store, checked, now=SEED_TIME)  # a crash before the row committed
    (city.settings.media_dir / "tmp" / f"{orphan.id}.dead.part").write_bytes(b"half a file")
    wall_now = datetime.now(UTC)

    # Too recent: a transaction may still be about to commit its row.
    assert city.db.read_sync(lambda conn: sweep_orphans(conn, store, older_than=wall_now - timedelta(hours=1))) == []
    removed = city.db.read_sync(lambda conn: sweep_orphans(conn, store, older_than=wall_now + timedelta(seconds=5)))
    assert sorted(removed) == sorted([orphan.key, orphan.thumb_key, f"tmp/{orphan.id}.dead.part"])
    assert sorted(files_under(city.settings.media_dir)) == sorted(
        [f"{kept.id[:2]}/{kept.key}", f"{kept.id[:2]}/{kept.thumb_key}"])


def test_link_media_attaches_free_media_and_refuses_media_of_another(city: City, store: LocalMediaStore) -> None:
    checked = photo()
    a = city.db.write_sync(lambda conn: store_image(conn, store, checked, now=SEED_TIME))
    b = city.db.write_sync(lambda conn: store_image(conn, store, checked, now=SEED_TIME, ref="report:9"))
    city.db.write_sync(lambda conn: link_media(conn, [a.id], "report:1"))
    city.db.write_sync(lambda conn: link_media(conn, [a.id], "report:1"))  # again: no change, no error
    assert [r.id for r in city.db.read_sync(media_for_ref, "report:1")] == [a.id]
    with pytest.raises(NotFound):
        city.db.write_sync(lambda conn: link_media(conn, [a.id, b.id], "report:1"))
    with pytest.raises(NotFound):
        city.db.write_sync(lambda conn: link_media(conn, ["../../etc/passwd"], "report:1"))
    assert [r.id for r in city.db.read_sync(media_for_ref, "report:9")] == [b.id]


def test_media_url() -> None:
    media_id = "a" * 32
    assert media_url("https://city.example/", media_id) == f"https://city.example/media/{media_id}"
    assert media_url("https://city.example", media_id, thumbnail=True) == \
        f"https://city.example/media/{media_id}/thumbnail"
    assert media_url(None, media_id) == f"/media/{media_id}"


def test_get_media_ignores_ids_that_are_not_ids(city: City) -> None:
    for bad in ("", "../secret", "A" * 32, "a" * 31, "a" * 32 + ".thumb"):
        assert city.db.read_sync(get_media, bad) is None


def test_the_runner_sweeps_orphans_periodically(city: City, store: LocalMediaStore) -> None:
    from wecity.core.assemble import build_context
    from wecity.core.clock import FrozenClock
    from wecity.core.runner import Runner
    from wecity.media import tasks

    checked = photo()
    kept = city.db.write_sync(lambda conn: store_image(conn, store, checked, now=SEED_TIME))
    orphan = write_files(store, checked, now=SEED_TIME)
    # File times are wall-clock times: run the task two hours from now, past the grace period.
    ctx = build_context(city.settings, db=city.db, clock=FrozenClock(datetime.now(UTC) + timedelta(hours=2)))
    assert ctx.registry.periodic["media.sweep_orphans"].fn is tasks.sweep_media_orphans
    asyncio.run(tasks.sweep_media_orphans(ctx))
    assert sorted(files_under(city.settings.media_dir)) == sorted(
        [f"{kept.id[:2]}/{kept.key}", f"{kept.id[:2]}/{kept.thumb_key}"])
    assert orphan.id not in str(files_under(city.settings.media_dir))
    # And through the runner itself, which claims the task once per period.
    again = write_files(store, checked, now=SEED_TIME)
    ctx.clock.advance(hours=7)  # type: ignore[attr-defined]
    assert asyncio.run(Runner(ctx).run_periodic()) >= 1
    assert again.id not in str(files_under(city.settings.media_dir))
