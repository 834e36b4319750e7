"""The Open311 GeoReport v2 adapter over the case engine (with v2.1 and mySociety extensions)."""
