"""Logs carry no phone numbers, e-mail addresses, one-time codes or tracking codes."""

from __future__ import annotations

import json
import logging

import pytest

from wecity.core.logs import JsonFormatter
from wecity.core.redact import redact_path, redact_text

from ..conftest import City, make_client

SMS = "【WeCity】您的验证码是 483920，10 分钟内有效。Your WeCity code is 483920 (valid 10 minutes)."


@pytest.mark.parametrize(("text", "secret"), [
    ('{"phone": "13912345678"}', "12345678"), ("+86 139 1234 5678", "1234 5678"), ("+8613912345678", "12345678"),
    (SMS, "483920"), ("to wang.xiaoming@example.com", "wang.xiaoming"),
    ("查询码 Ab3dEfGh12345678", "Ab3dEfGh12345678"), ("tracking code: Ab3dEfGh12345678", "Ab3dEfGh12345678"),
])
def test_personal_data_and_codes_are_masked(text: str, secret: str) -> None:
    assert secret not in redact_text(text)


def test_the_formatter_masks_messages_fields_and_tracebacks() -> None:
    try:
        raise ValueError("no reporter 13912345678")
    except ValueError:
        import sys

        record = logging.LogRecord("t", logging.WARNING, __file__, 1, "sms to %s: %s", ("13812345678", SMS),
                                   sys.exc_info())
    record.fields = {"path": "/track/Ab3dEfGh12345678"}  # type: ignore[attr-defined]
    line = JsonFormatter().format(record)
    assert all(s not in line for s in ("13812345678", "13912345678", "483920", "Ab3dEfGh12345678"))
    assert json.loads(line)["message"].startswith("sms to 138****5678")


def test_tracking_codes_leave_the_access_log(sqlite_city: City, caplog: pytest.LogCaptureFixture) -> None:
    assert redact_path("/track/Ab3dEfGh12345678/rate") == "/track/Ab3***/rate"
    with caplog.at_level(logging.INFO, logger="wecity.access"), make_client(sqlite_city) as client:
        client.get("/track/Ab3dEfGh12345678")
        client.get("/api/v1/track/Ab3dEfGh12345678")
    lines = [r.getMessage() + json.dumps(getattr(r, "fields", {})) for r in caplog.records]
    assert lines and not any("Ab3dEfGh12345678" in line for line in lines)
