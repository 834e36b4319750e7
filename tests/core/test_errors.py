"""The error tree: stable, unique codes and the right HTTP status per family."""

import inspect

from wecity.core import errors


def test_every_error_class_has_a_unique_code_and_is_documented() -> None:
    classes = [c for _, c in inspect.getmembers(errors, inspect.isclass) if issubclass(c, errors.WeCityError)]
    codes = [c.default_code for c in classes]
    assert len(codes) == len(set(codes)), codes
    for cls in classes:
        assert cls.__name__ in errors.__doc__, f"{cls.__name__} missing from the tree in errors.py's docstring"


def test_messages_are_bilingual() -> None:
    exc = errors.NotFound("no such case", message_zh="没有该案件")
    assert exc.localized("en") == "no such case"
    assert exc.localized("zh_CN") == "没有该案件"
    assert exc.status == 404


def test_an_http_status_becomes_the_class_that_has_it_or_an_error_of_exactly_that_status() -> None:
    refused = errors.error_for_status(405, "PUT is not allowed here", message_zh="此处不支持 PUT")
    assert type(refused) is errors.MethodNotAllowed and refused.code == "method_not_allowed"
    too_large = errors.error_for_status(413, "Content Too Large", message_zh="请求内容过大")
    assert type(too_large) is errors.PayloadTooLarge and too_large.code == "payload_too_large"
    too_long = errors.error_for_status(414, "URI Too Long", message_zh="请求地址过长")
    assert isinstance(too_long, errors.HttpError) and (too_long.status, too_long.code) == (414, "http.414")
    assert errors.HttpError.status == 500  # the status belongs to a class of its own, not to HttpError
    assert type(errors.error_for_status(414, "again", message_zh="再次")) is type(too_long)
