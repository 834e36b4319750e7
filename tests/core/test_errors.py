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
