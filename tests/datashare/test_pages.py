"""The data catalogue's pages, in both languages, and their rate limit."""

from __future__ import annotations

from wecity.core.limits import parse_rule
from wecity.core.settings import default_rate_limits

from ..conftest import City, make_client


def test_browse_search_and_one_dataset_in_both_languages(catalogued: City) -> None:
    with make_client(catalogued) as client:
        page = client.get("/data", headers={"Accept-Language": "zh-CN"})
        assert page.status_code == 200 and "共找到 19 个数据集" in page.text
        found = client.get("/data", params={"q": "pm2.5"}, headers={"Accept-Language": "zh-CN"}).text
        assert "/data/air-quality" in found and "/data/city-cases" not in found
        open_only = client.get("/data", params={"open": "1"}).text
        assert "/data/marriage-registrations" not in open_only and "/data/air-quality" in open_only
        zh = client.get("/data/residence-permits", headers={"Accept-Language": "zh-CN"}).text
        assert "有条件共享" in zh and "敏感个人信息" in zh and "居住证暂行条例" in zh
        en = client.get("/data/residence-permits", headers={"Accept-Language": "en"}).text
        assert "Shared on conditions" in en and "sensitive personal" in en
        missing = client.get("/data/no-such-thing", headers={"Accept-Language": "en"})
        assert missing.status_code == 404 and "There is no such dataset." in missing.text


def test_the_catalogue_pages_and_apis_are_rate_limited_per_address(catalogued: City) -> None:
    limits = {**default_rate_limits(), "data_read": parse_rule("3/minute")}
    with make_client(catalogued, rate_limits=limits) as client:
        for _ in range(3):
            assert client.get("/api/3/action/package_list").status_code == 200
        refused = client.get("/data")
        assert refused.status_code == 429 and "Retry-After" in refused.headers
        ckan = client.get("/api/3/action/package_show", params={"id": "air-quality"})
        assert ckan.status_code == 429 and ckan.json()["success"] is False
