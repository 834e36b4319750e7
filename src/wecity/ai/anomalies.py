"""Sensor anomalies: is a sensor's newest reading far from its own past? Spikes, stuck devices and drift.

Every test compares a sensor with itself — the last `window` (100) readings of one attribute before the
newest — so one rule serves sensors of very different levels and noise without a threshold per device.
Nothing is judged before `min_history` (20) past readings: a short past says too little about its noise.

- **Spike**: the robust z-score of the newest reading x against the past (x excluded),
  z = (x − median) / (1.4826·MAD); flagged when |z| > `threshold` (5). Median and MAD (median absolute
  deviation) ignore the very outliers being looked for, which a mean and standard deviation would not;
  1.4826·MAD equals the standard deviation for normal noise, so 5 is far beyond what noise gives (1 reading
  in 1.7 million with the true deviation; 2 in 12,000 simulated ones with it estimated from 100 readings)
  yet well within a real fault (a cover knocked from 2° to 30° on a sensor of 0.3° noise is 90). Noise
  with heavy tails is flagged more often (Student's t with 3 degrees of freedom: 1.2%), as it should be.
- **Stuck**: the last `stuck_run` (12) or more readings identical, where the sensor's own past makes such
  a run unlikely: the readings before the run varied, and a past of that length would hold fewer than
  1/1000 such runs were its readings independent (n · share^run, share being how often the past read that
  value). A sensor whose readings never repeat is stuck after 12 equal ones; a quantised one that reads the
  same step most of the time is not, until its run is far longer than its past makes likely. A run at the
  lowest or the highest value the sensor's past reached (a past of more than two values) is not stuck: that
  is a floor or a ceiling (a rain gauge when the rain stops, humidity saturated at 100%), where a working
  sensor rests. A run at a new high or low is judged as any other: a device that freezes as its reading
  climbs past its old range is stuck.
- **Drift**: the median of the last `recent` (12) readings as a robust z-score against the older half of
  the window; flagged when |z| > `threshold` too. The reference is the older half, not all the earlier
  readings, so that it lags a slow drift instead of following it; a median of 12 readings varies far less
  than one reading, so the same threshold keeps noise out — even autocorrelated noise, which wanders (an
  AR(1) series with φ = 0.9 had 0.1% of its readings flagged at 5, and 3.7% at 3). A drift is found once
  the level has moved about 5 typical deviations within the window. Simulated (normal noise, 20 series
  each): a drift of 0.1 deviations per reading was found every time, a median of 52 readings after it
  began; 0.067 per reading in 18 of 20 (130 readings); 0.05 in half; 0.03 or slower never — such drift is
  for calibration checks, not for this test. An attribute with a cycle longer than the window (a daily
  temperature read every 10 minutes) moves more than its window shows: watch it for spikes and stuck
  readings, not drift.

**When MAD is 0** (more than half the past readings equal their median: a quantised sensor at rest), the
scale is the sensor's own step: the smallest difference between two distinct values in the past, so a
reading one step off is one unit away, not infinitely many. When the past holds a single value there is no
step; the scale is then 1% of that value's size (readings are compared with their level), and with a past
of zeros there is no scale at all and spike and drift say nothing (a reading that leaves zero is not news
to a sensor that has only ever read zero).

Why not STL (seasonal-trend decomposition): it needs whole seasons of regularly spaced readings, which
devices that report on change, or irregularly, do not give, and it costs a model fit per reading inside
the broker's write; the robust z-score needs a sort of 100 numbers and works from the twentieth reading.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum

import numpy as np

MAD_TO_SD = 1.4826  # 1 / Φ⁻¹(3/4): MAD times this estimates the standard deviation of normal noise
LEVEL_FRACTION = 0.01  # the scale of a past with one value: 1% of its size
STUCK_CHANCE = 0.001  # fewer such runs than this expected in the sensor's own past: a stuck device


class Kind(StrEnum):
    SPIKE = "spike"
    STUCK = "stuck"
    DRIFT = "drift"

    def label(self, locale: str) -> str:
        zh, en = _LABELS[self]
        return zh if locale.startswith("zh") else en


_LABELS = {Kind.SPIKE: ("突变", "spike"), Kind.STUCK: ("卡滞", "stuck"), Kind.DRIFT: ("漂移", "drift")}


@dataclass(frozen=True)
class Limits:
    """How much past is read and what counts as far. The defaults are explained in the module's docstring."""

    window: int = 100
    min_history: int = 20
    threshold: float = 5.0
    recent: int = 12
    stuck_run: int = 12

    def with_threshold(self, threshold: float | None) -> Limits:
        """These limits with a rule's own z threshold (for spikes and drift), or as they are."""
        return self if threshold is None else replace(self, threshold=threshold)


@dataclass(frozen=True)
class Assessment:
    """What the tests found for the newest reading; a z is None when it could not be computed."""

    value: float | None
    past: int
    z: float | None = None
    drift_z: float | None = None
    run: int = 0
    kinds: tuple[Kind, ...] = field(default=())

    def has(self, kind: Kind | None) -> bool:
        """Whether `kind` was found (any kind, for None)."""
        return bool(self.kinds) if kind is None else kind in self.kinds


def robust_scale(past: np.ndarray) -> float | None:
    """1.4826·MAD of `past`, else its smallest step, else 1% of its level; None for a past of zeros."""
    median = float(np.median(past))
    mad = float(np.median(np.abs(past - median)))
    if mad > 0:
        return MAD_TO_SD * mad
    distinct = np.unique(past)
    if len(distinct) > 1:
        return float(np.min(np.diff(distinct)))
    level = abs(median) * LEVEL_FRACTION
    return level if level > 0 else None


def robust_z(value: float, past: np.ndarray) -> float | None:
    """How many of the past's robust deviations `value` lies from the past's median (None: no scale)."""
    scale = robust_scale(past)
    if scale is None:
        return None
    return (value - float(np.median(past))) / scale


def trailing_run(values: np.ndarray) -> int:
    """How many readings at the end are equal to the last one."""
    if len(values) == 0:
        return 0
    differs = np.flatnonzero(values != values[-1])
    return len(values) if len(differs) == 0 else len(values) - 1 - int(differs[-1])


def assess(series: Sequence[float] | np.ndarray, limits: Limits = Limits()) -> Assessment:
    """Judge the last reading of `series` (oldest first) against the `limits.window` readings before it."""
    values = np.asarray(series, dtype=np.float64)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return Assessment(None, 0)
    values = values[-(limits.window + 1):]
    newest, past = float(values[-1]), values[:-1]
    if len(past) < limits.min_history:
        return Assessment(newest, len(past))
    kinds: list[Kind] = []
    z = robust_z(newest, past)
    if z is not None and abs(z) > limits.threshold:
        kinds.append(Kind.SPIKE)
    run = trailing_run(values)
    if run >= limits.stuck_run and stuck_chance(values[:-run], newest, run, limits) < STUCK_CHANCE:
        kinds.append(Kind.STUCK)
    drift_z = None
    reference, recent = values[:len(values) // 2], values[-limits.recent:]
    if len(reference) >= limits.min_history and len(values) - len(reference) >= limits.recent:
        drift_z = robust_z(float(np.median(recent)), reference)
        if drift_z is not None and abs(drift_z) > limits.threshold:
            kinds.append(Kind.DRIFT)
    return Assessment(newest, len(past), z, drift_z, run, tuple(kinds))


def stuck_chance(before: np.ndarray, value: float, run: int, limits: Limits) -> float:
    """How many runs of `run` readings equal to `value` a past like `before` would hold, were its readings
    drawn independently and equal to `value` as often as there: about len(before) · share^run. 1 when
    `before` is too short to tell or never varied."""
    if len(before) < limits.min_history or len(np.unique(before)) < 2:
        return 1.0
    if len(np.unique(before)) > 2 and value in (float(np.min(before)), float(np.max(before))):
        return 1.0  # the lowest or highest its past reached: a floor or a ceiling (no rain, saturated humidity)
    share = float(np.mean(before == value))
    return len(before) * share ** run


def rolling(series: Sequence[float], limits: Limits = Limits(), *, last: int = 50) -> list[Assessment]:
    """The assessment each of the `last` readings had when it arrived (oldest first), for a sensor's page."""
    values = [float(v) for v in series]
    start = max(0, len(values) - last)
    return [assess(values[max(0, i - limits.window):i + 1], limits) for i in range(start, len(values))]
