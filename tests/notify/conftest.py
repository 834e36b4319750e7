from ..core.conftest import ctx

__all__ = ["ctx"]
