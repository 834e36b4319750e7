"""Serving stored images over HTTP: bytes, headers, caching, and 404s that reveal nothing."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from wecity.media.service import MediaRecord, inspect_image, media_url, new_media_id, store_image
from wecity.media.store import LocalMediaStore

from ..conftest import SEED_TIME, City, make_client
from . import samples as s
from .test_images import LIMITS, assert_no_metadata

TRAVERSALS = [
    "../../../etc/passwd", "..%2F..%2F..%2Fetc%2Fpasswd", "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "..%5c..%5cwindows", "tmp", "..", "%00", "aa/" + "a" * 32,
]


def stored(city: City, data: bytes) -> tuple[MediaRecord, bytes, bytes]:
    store = LocalMediaStore(city.settings.media_dir)
    checked = inspect_image(data, **LIMITS)
    record = city.db.write_sync(lambda conn: store_image(conn, store, checked, now=SEED_TIME, ref="report:1"))
    return record, checked.content, checked.thumbnail


def test_an_image_and_its_thumbnail_are_served_with_type_cache_headers_and_etag(city: City) -> None:
    data = s.encode(s.picture((1200, 800)), "JPEG", exif=s.exif_bytes(gps=(28.196, 112.977), orientation=6))
    record, content, thumbnail = stored(city, data)
    with make_client(city) as client:
        r = client.get(media_url(None, record.id))
        assert r.status_code == 200
        assert r.content == content
        assert r.headers["content-type"] == "image/jpeg"
        assert "max-age=31536000" in r.headers["cache-control"] and "immutable" in r.headers["cache-control"]
        assert r.headers["etag"] == f'"{record.sha256}"'
        assert r.headers["x-content-type-options"] == "nosniff"
        assert "sandbox" in r.headers["content-security-policy"]
        assert_no_metadata(r.content)
        with Image.open(io.BytesIO(r.content)) as image:
            assert image.size == (800, 1200)  # orientation 6 applied

        t = client.get(media_url(None, record.id, thumbnail=True))
        assert t.status_code == 200 and t.content == thumbnail
        assert t.headers["content-type"] == "image/jpeg"
        assert t.headers["etag"] == f'"{record.thumb_sha256}"' != r.headers["etag"]
        with Image.open(io.BytesIO(t.content)) as image:
            assert image.size == (213, 320)
        assert_no_metadata(t.content)

        again = client.get(media_url(None, record.id), headers={"If-None-Match": r.headers["etag"]})
        assert again.status_code == 304 and again.content == b""
        assert again.headers["etag"] == r.headers["etag"]
        other = client.get(media_url(None, record.id), headers={"If-None-Match": '"something-else"'})
        assert other.status_code == 200

        head = client.head(media_url(None, record.id))
        assert head.status_code == 200 and head.content == b""
        assert head.headers["content-length"] == str(len(content))
        assert head.headers["content-type"] == "image/jpeg"


def test_a_transparent_png_is_served_as_png(city: City) -> None:
    image = s.picture((60, 40), "RGBA")
    image.putpixel((0, 0), (0, 0, 0, 0))
    record, content, _ = stored(city, s.encode(image, "PNG"))
    with make_client(city) as client:
        r = client.get(f"/media/{record.id}")
        assert r.headers["content-type"] == "image/png" and r.content == content
        assert client.get(f"/media/{record.id}/thumbnail").headers["content-type"] == "image/png"


@pytest.mark.parametrize("suffix", ["", "/thumbnail"])
def test_unknown_ids_are_404_problem_json(city: City, suffix: str) -> None:
    with make_client(city) as client:
        for media_id in (new_media_id(), "not-an-id", "A" * 32):
            r = client.get(f"/media/{media_id}{suffix}", headers={"Accept-Language": "en"})
            assert r.status_code == 404
            assert r.headers["content-type"].startswith("application/problem+json")
            body = r.json()
            assert body["code"] == "media.not_found" and body["status"] == 404
            zh = client.get(f"/media/{media_id}{suffix}", headers={"Accept-Language": "zh-CN"}).json()
            assert "没有该媒体文件" in zh["title"]


def test_paths_that_try_to_leave_the_media_dir_are_404(city: City) -> None:
    secret = city.settings.media_dir.parent / "secret.txt"
    secret.write_text("do not serve")
    record, _, _ = stored(city, s.encode(s.picture(), "PNG"))
    with make_client(city) as client:
        for path in TRAVERSALS + [f"{record.id}/../../secret.txt", f"..%2F{record.id}", f"{record.id}.thumb",
                                  f"{record.id[:2]}%2F{record.id}"]:
            r = client.get(f"/media/{path}")
            assert b"do not serve" not in r.content, path
            # The client resolves literal dot segments itself ("/media/.." is "/"); what reaches
            # /media/ must be a 404.
            if r.url.path.startswith("/media/"):
                assert r.status_code == 404, path


def test_a_file_without_its_row_is_not_served(city: City) -> None:
    """The row is the authority: an orphan file (a rolled-back transaction) is never reachable."""
    store = LocalMediaStore(city.settings.media_dir)
    orphan = new_media_id()
    store.put(orphan, s.encode(s.picture(), "JPEG"))
    with make_client(city) as client:
        assert client.get(f"/media/{orphan}").status_code == 404


def test_the_endpoints_are_in_the_openapi_document(city: City) -> None:
    with make_client(city) as client:
        paths = client.get("/openapi.json").json()["paths"]
    assert "/media/{media_id}" in paths and "/media/{media_id}/thumbnail" in paths
