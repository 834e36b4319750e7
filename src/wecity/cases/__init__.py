"""The one case engine: intake, routing, dispatch, SLA clocks, escalation, timeline, rating."""

# Sensor rules listen to the context broker's changes from wherever the engine is loaded.
from wecity.cases import sensors as _sensors  # noqa: E402,F401
