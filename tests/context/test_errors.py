"""Each NGSI-LD error family has one constructor (wecity.context.errors); the /ngsi-ld renderer gives
each the ProblemDetails type and status the ETSI conformance suite expects."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from wecity.context import errors
from wecity.context.protocol import ERRORS, problem


@pytest.mark.parametrize(("make", "kind", "status"), [
    (errors.bad_request_data, "BadRequestData", 400),
    (errors.invalid_request, "InvalidRequest", 400),
    (errors.unsupported_media_type, "InvalidRequest", 415),
    (errors.not_acceptable, "InvalidRequest", 406),
    (errors.operation_not_supported, "OperationNotSupported", 422),
    (errors.too_many_results, "TooManyResults", 403),
    (errors.ld_context_not_available, "LdContextNotAvailable", 504),
    (errors.nonexistent_tenant, "NonexistentTenant", 404),
    (errors.jsonld_context_unreachable, "LdContextNotAvailable", 504),
    (errors.resource_not_found, "ResourceNotFound", 404),
    (errors.already_exists, "AlreadyExists", 409),
    (errors.unauthorized, "InvalidRequest", 401),
])
def test_each_error_family_renders_its_etsi_type_and_status(make: Callable[[str, str], Any], kind: str,
                                                              status: int) -> None:
    body, answered = problem(make("the reason", "原因"), "zh")
    assert (body["type"], body["status"], answered) == (ERRORS + kind, status, status)
    assert (body["title"], body["detail"]) == ("原因", "the reason")


def test_a_query_language_error_names_its_language() -> None:
    exc = errors.language_error("q", "q 查询")("missing ')'", "缺少右括号")
    assert exc.code == "ngsild.bad_request_data"
    assert (exc.message, exc.message_zh) == ("invalid q: missing ')'", "q 查询无效：缺少右括号")
