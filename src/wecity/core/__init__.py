"""The base runtime: settings, database, errors, clock, background runner, media."""
