"""City decision (城市决策): the operations centre's figures — KPIs defined as data, kept as rollups of the case
engine's events, filtered, drilled down and exported."""
