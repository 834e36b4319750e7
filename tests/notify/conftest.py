"""Fixtures for the notification tests: the base layer's context and clean registries."""

from ..core.conftest import clean_registries, ctx

__all__ = ["clean_registries", "ctx"]
