"""A category may need the citizen's words: "Other" says nothing by itself."""

from __future__ import annotations

import pytest

from tests.cases.conftest import WUYI_SQUARE
from tests.conftest import City
from wecity.cases.intake import NewReport, submit_report
from wecity.core.errors import ValidationFailed
from wecity.geo.service import load_area_index


def _report(city: City, code: str, description: str) -> int:
    index = city.db.read_sync(load_area_index)
    report = NewReport(service_code=code, lat=WUYI_SQUARE[0], long=WUYI_SQUARE[1], description=description)
    return city.db.write_sync(lambda c: submit_report(c, report, area_index=index, now=city.clock.now())).case_id


def test_a_category_that_needs_a_description_refuses_a_report_without_one(city: City) -> None:
    with pytest.raises(ValidationFailed) as err:
        _report(city, "other", "  ")
    assert err.value.code == "request.description_required" and "需要填写问题描述" in err.value.message_zh
    assert _report(city, "other", "小区门口的健身器材坏了") > 0
    assert _report(city, "garbage", "") > 0  # the others do not need words
