"""The city's areas, point-in-area lookup, and coordinate systems (WGS-84, GCJ-02, BD-09)."""
