"""The data platform: a catalogue of the departments' datasets, sharing grants, one data API, and who used whose data."""
