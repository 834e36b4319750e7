"""The one case engine: intake, routing, dispatch, SLA clocks, escalation, timeline, rating."""
