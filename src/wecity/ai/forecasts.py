"""Forecasts: daily case volume for the next 14 days, with prediction intervals, from the model that did
better on the last weeks.

Counts are the cases received per local day (one category or all, one district or all) over the history
(up to 365 days). Two models:

- **seasonal naive**: each day as the same weekday a week before; intervals from the spread of those
  week-on-week differences, widening with each further week ahead;
- **ETS** (statsmodels' `ETSModel`): additive error, a damped additive trend and an additive weekly season
  when there are at least three weeks of history (else level only), intervals from the model.

**Backtest**: both are fitted on all but the last 14 days and scored on them (mean absolute error); the one
with the lower error serves — refitted on all the days — and both errors are shown with it.
"""

from __future__ import annotations

import warnings
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.cases.models import cases
from wecity.geo.models import areas
from wecity.geo.service import city_timezone

HORIZON = 14
HISTORY_DAYS = 365
SEASON = 7
Z80 = 1.2816  # the 80% interval


def daily_counts(conn: Connection, *, now: datetime, category: str | None = None, district: str | None = None,
                 history: int = HISTORY_DAYS) -> tuple[list[date], np.ndarray]:
    """Cases received per day of the city's own time zone over the last `history` days (today excluded: it
    is not over)."""
    zone = city_timezone(conn)
    today = now.astimezone(zone).date()
    first = today - timedelta(days=history)
    start = datetime.combine(first, datetime.min.time(), tzinfo=zone)
    end = datetime.combine(today, datetime.min.time(), tzinfo=zone)
    query = sa.select(cases.c.created_at).where(cases.c.created_at >= start, cases.c.created_at < end,
                                                cases.c.merged_into_id.is_(None))
    if category:
        query = query.where(cases.c.category_code == category)
    if district:
        query = query.where(cases.c.area_id.in_(sa.select(areas.c.id).where(areas.c.code == district)))
    days = [first + timedelta(days=i) for i in range(history)]
    counts = np.zeros(history)
    for (at,) in conn.execute(query):
        index = (at.astimezone(zone).date() - first).days
        if 0 <= index < history:
            counts[index] += 1
    # The city's history starts with its first case (of any category, anywhere): the days before are not
    # zeros, they are unknown; after it a category's or a district's quiet days are zeros.
    first_case = conn.execute(sa.select(sa.func.min(cases.c.created_at)).where(
        cases.c.created_at >= start, cases.c.created_at < end, cases.c.merged_into_id.is_(None))).scalar()
    begin = history if first_case is None else max(0, (first_case.astimezone(zone).date() - first).days)
    return days[begin:], counts[begin:]


def _naive(y: np.ndarray, horizon: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if len(y) >= SEASON:
        point = np.array([y[len(y) - SEASON + (h % SEASON)] for h in range(horizon)])
        spread = np.std(y[SEASON:] - y[:-SEASON]) if len(y) > SEASON else np.std(y)
    else:
        point = np.full(horizon, y.mean() if len(y) else 0.0)
        spread = np.std(y) if len(y) else 0.0
    widen = np.sqrt(np.arange(horizon) // SEASON + 1)
    return point, np.maximum(point - Z80 * spread * widen, 0), point + Z80 * spread * widen


def _ets(y: np.ndarray, horizon: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    import pandas as pd
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    seasonal = len(y) >= 3 * SEASON
    # statsmodels predicts with intervals on a dated series; the dates themselves do not matter here.
    series = pd.Series(y.astype(float), index=pd.date_range("2000-01-03", periods=len(y), freq="D"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter on short series; the backtest judges the fit
        model = ETSModel(series, error="add", trend="add" if seasonal else None,
                         damped_trend=seasonal, seasonal="add" if seasonal else None,
                         seasonal_periods=SEASON if seasonal else None)
        fitted = model.fit(disp=False, maxiter=200)
        frame = fitted.get_prediction(start=len(y), end=len(y) + horizon - 1).summary_frame(alpha=0.2)
    point = np.maximum(frame["mean"].to_numpy(dtype=float), 0)
    return point, np.maximum(frame["pi_lower"].to_numpy(dtype=float), 0), np.maximum(frame["pi_upper"].to_numpy(dtype=float), 0)


MODELS = {"seasonal_naive": _naive, "ets": _ets}


def forecast(conn: Connection, *, now: datetime, category: str | None = None, district: str | None = None,
             horizon: int = HORIZON) -> dict[str, Any]:
    """The next `horizon` days with 80% intervals, from the model with the lower backtest error."""
    days, y = daily_counts(conn, now=now, category=category, district=district)
    errors: dict[str, float | None] = {}
    if len(y) >= 2 * horizon:
        train, test = y[:-horizon], y[-horizon:]
        for name, model in MODELS.items():
            try:
                errors[name] = round(float(np.mean(np.abs(model(train, horizon)[0] - test))), 3)
            except (ValueError, np.linalg.LinAlgError):
                errors[name] = None
    usable = {k: v for k, v in errors.items() if v is not None}
    chosen = min(usable, key=lambda k: usable[k]) if usable else "seasonal_naive"
    point, low, high = MODELS[chosen](y, horizon) if len(y) else (np.zeros(horizon),) * 3
    today = now.astimezone(city_timezone(conn)).date()
    return {
        "category": category, "district": district, "history_days": len(y),
        "method": chosen, "backtest_mae": errors, "backtest_days": horizon if errors else 0, "interval": 0.8,
        "days": [(today + timedelta(days=h)).isoformat() for h in range(horizon)],
        "forecast": [round(float(v), 2) for v in point], "lower": [round(float(v), 2) for v in low],
        "upper": [round(float(v), 2) for v in high],
        "recent": {"days": [d.isoformat() for d in days[-28:]], "counts": [int(v) for v in y[-28:]]},
    }
