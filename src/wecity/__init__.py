"""WeCity: an open-source city operating platform."""

__version__ = "0.1.0"
