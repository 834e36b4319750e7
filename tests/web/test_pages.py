"""The portal shell: language choice, navigation by role, accessibility basics, safe headers."""

from __future__ import annotations

import re
from typing import Any

from tests.web.conftest import log_in

EXTERNAL = re.compile(r"""(?:src|href|action)\s*=\s*["'](?:https?:)?//""", re.I)


def test_home_defaults_to_chinese_without_accept_language(web: Any) -> None:
    r = web.get("/")
    assert r.status_code == 200
    assert '<html lang="zh-CN">' in r.text
    assert "城市里有问题？告诉我们。" in r.text
    assert r.headers["content-language"] == "zh-CN"


def test_home_follows_accept_language(web: Any) -> None:
    r = web.get("/", headers={"Accept-Language": "en-GB,en;q=0.9,zh;q=0.5"})
    assert '<html lang="en">' in r.text
    assert "Something wrong in the city? Tell us." in r.text
    zh = web.get("/", headers={"Accept-Language": "en;q=0.3,zh-CN;q=0.9"})
    assert '<html lang="zh-CN">' in zh.text


def test_language_switch_sets_cookie_and_returns_to_the_page(web: Any) -> None:
    r = web.get("/lang", params={"to": "en", "next": "/map"}, headers={"Accept-Language": "zh-CN"},
                follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/map"
    cookie = r.headers["set-cookie"]
    assert "lang=en" in cookie and "samesite=lax" in cookie.lower()
    page = web.get("/map", headers={"Accept-Language": "zh-CN"})
    assert '<html lang="en">' in page.text and "<h1>City map</h1>" in page.text
    # The switch on an English page offers Chinese, and back.
    assert 'href="/lang?to=zh_CN&amp;next=%2Fmap"' in page.text


def test_language_switch_refuses_to_redirect_off_site(web: Any) -> None:
    for target in ("https://evil.example/", "//evil.example/", "/\\evil.example", "javascript:alert(1)"):
        r = web.get("/lang", params={"to": "en", "next": target}, follow_redirects=False)
        assert r.headers["location"] == "/", target


def test_every_page_has_lang_skip_link_one_h1_and_labelled_inputs(web: Any) -> None:
    log_in(web, "admin")
    for path in ("/", "/map", "/staff", "/report", "/track", "/my", "/staff/queue", "/staff/dispatch", "/ops"):
        html = web.get(path).text
        assert re.search(r'<html lang="(zh-CN|en)">', html), path
        assert '<a class="skip-link" href="#main">' in html and 'id="main"' in html, path
        assert len(re.findall(r"<h1[ >]", html)) == 1, path
        for img in re.findall(r"<img\b[^>]*>", html):
            assert re.search(r'\salt="', img), (path, img)
        for field_id in re.findall(r'<(?:input|select|textarea)\b(?![^>]*type="hidden")[^>]*\bid="([^"]+)"', html):
            assert f'for="{field_id}"' in html, (path, field_id)


def test_login_page_inputs_have_labels(web: Any) -> None:
    html = web.get("/login").text
    assert '<label for="username">' in html and '<label for="password">' in html
    assert 'autocomplete="current-password"' in html


def test_no_page_links_outside_the_platform(web: Any) -> None:
    log_in(web, "admin")
    for path in ("/", "/map", "/staff", "/login", "/report", "/track", "/my", "/staff/queue", "/staff/dispatch",
                 "/ops"):
        html = web.get(path).text
        assert not EXTERNAL.search(html), (path, EXTERNAL.search(html))


def test_pages_send_security_headers(web: Any) -> None:
    r = web.get("/")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert r.headers["x-content-type-options"] == "nosniff"


def test_tile_server_is_the_only_allowed_external_image_origin(sqlite_city: Any) -> None:
    from tests.conftest import make_client

    with make_client(sqlite_city, tile_url="https://{s}.tiles.city.example/{z}/{x}/{y}.png") as c:
        r = c.get("/map")
    assert "img-src 'self' data: blob: https://*.tiles.city.example" in r.headers["content-security-policy"]
    assert 'data-tile-url="https://{s}.tiles.city.example/{z}/{x}/{y}.png"' in r.text


def test_map_page_without_tiles_says_it_works_offline(web: Any) -> None:
    html = web.get("/map", headers={"Accept-Language": "en"}).text
    assert "data-tile-url" not in html
    assert 'data-areas-url="/api/v1/areas"' in html
    for name in ("Furong District", "Yuelu District", "Liuyang City"):
        assert name in html
    assert "works without the internet" in html


def test_navigation_depends_on_role(web: Any) -> None:
    anonymous = web.get("/").text
    assert 'href="/staff"' not in anonymous.split("<main")[0]
    assert 'href="/login"' in anonymous
    log_in(web, "chengguan")
    staff = web.get("/").text.split("<main")[0]
    assert 'href="/staff"' in staff and "退出登录" in staff


def test_city_name_comes_from_the_jurisdiction(web: Any) -> None:
    assert "<title>首页 · 长沙市</title>" in web.get("/").text
    assert "<title>Home · Changsha</title>" in web.get("/", headers={"Accept-Language": "en"}).text


def test_vendored_libraries_are_served(web: Any) -> None:
    from wecity.web.vendor import VENDOR
    from wecity.web.views import STATIC_DIR

    for path in VENDOR.values():
        r = web.get(path)
        assert r.status_code == 200, path
        assert len(r.content) > (500 if path.endswith(".css") else 5_000), path  # the library, not a placeholder
        assert r.content == (STATIC_DIR / path.removeprefix("/static/")).read_bytes(), path


def test_the_map_data_source_returns_the_districts_as_geojson(web: Any) -> None:
    collection = web.get("/api/v1/areas").json()
    assert collection["type"] == "FeatureCollection"
    assert len(collection["features"]) == 9
    assert all(f["geometry"]["type"] in ("Polygon", "MultiPolygon") for f in collection["features"])


def test_the_insight_channels_are_named_in_the_readers_language(web: Any) -> None:
    assert log_in(web, "supervisor").status_code == 303
    html = web.get("/insight").text
    channels = re.search(r'<select id="f-channel".*?</select>', html, re.S)
    assert channels
    for zh in ("网页报事", "Open311 合作方", "热线", "物联感知", "企业"):
        assert zh in channels.group(0), zh
    assert "Report form" not in channels.group(0) and "Hotline" not in channels.group(0)


def test_an_address_a_page_cannot_read_is_answered_in_the_readers_words(web: Any) -> None:
    """/cases/abc: a page in the reader's language, not the framework's English inside the Chinese; the
    APIs keep their problem answer naming the parameter."""
    zh = web.get("/cases/abc")
    assert zh.status_code == 400 and zh.headers["content-type"].startswith("text/html")
    assert "该地址或表单中有无效的内容，请检查后重试。" in zh.text and "Input should be" not in zh.text
    web.cookies.set("lang", "en")
    en = web.get("/cases/abc")
    assert en.status_code == 400 and "Part of this address or form is not valid." in en.text
    api = web.get("/api/v1/datasets", params={"limit": "abc"})
    assert api.status_code == 400 and api.headers["content-type"] == "application/problem+json"
    assert "limit" in api.json()["title"]
