"""Sensor anomalies, the statistics: a spike, a stuck device and a drift are found on synthetic series;
noise, a quantised sensor at rest and a short past are not."""

from __future__ import annotations

import numpy as np

from wecity.ai.anomalies import Kind, Limits, assess, robust_scale, robust_z, rolling, trailing_run


def _noise(n: int, seed: int = 7, level: float = 2.0, sd: float = 0.3) -> np.ndarray:
    return level + np.random.default_rng(seed).normal(0, sd, n)


def test_the_robust_z_is_the_distance_in_mad_units_and_ignores_the_outliers_of_the_past() -> None:
    past = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 1000.0])  # median 3.5, MAD 1.5
    z = robust_z(3.5 + 2 * 1.4826 * 1.5, past)
    assert z is not None and abs(z - 2.0) < 1e-12  # the 1000 does not widen the scale


def test_a_spike_is_flagged_and_the_noise_before_it_is_not() -> None:
    series = list(_noise(120))
    quiet = rolling(series, last=100)
    assert [a for a in quiet if a.kinds] == []
    found = assess([*series, 30.0])
    assert found.kinds == (Kind.SPIKE,) and found.z is not None and found.z > 50
    assert assess([*series, -30.0]).has(Kind.SPIKE)  # a fall as far as a rise
    assert not assess([*series, 2.5]).kinds  # 1.7 deviations: noise


def test_normal_noise_is_not_flagged_over_many_readings() -> None:
    flagged = sum(bool(a.kinds) for seed in range(5) for a in rolling(list(_noise(300, seed)), last=280))
    assert flagged <= 1  # of 1,400 readings; a threshold of 5 deviations keeps noise out


def test_a_short_past_is_never_flagged() -> None:
    for n in range(20):
        assert assess([*([2.0, 2.1] * 20)[:n], 500.0]).kinds == (), n
    assert assess([*([2.0, 2.1] * 20)[:20], 500.0]).has(Kind.SPIKE)  # the twentieth past reading is enough


def test_a_device_stuck_at_one_value_is_flagged_stuck_from_the_twelfth_equal_reading() -> None:
    series = list(np.round(_noise(80), 3))
    stuck = series[-1]
    for k in range(1, 11):  # with the last reading of the noise, 2 to 11 equal ones
        assert not assess([*series, *[stuck] * k]).has(Kind.STUCK), k
    found = assess([*series, *[stuck] * 11])  # with the last reading of the noise: twelve equal ones
    assert found.run == 12 and found.has(Kind.STUCK) and not found.has(Kind.SPIKE)


def test_a_quantised_sensor_at_rest_is_not_stuck_but_one_stuck_elsewhere_is() -> None:
    rng = np.random.default_rng(3)
    steps = list(rng.choice([2.0, 2.5], size=80, p=[0.8, 0.2]))  # mostly one step: runs of 12 are common
    assert not assess([*steps, *[2.0] * 14]).has(Kind.STUCK)
    assert assess([*steps, *[2.5] * 14]).has(Kind.STUCK)  # the rarer step 14 times in a row is not rest


def test_a_sensor_resting_at_its_floor_or_ceiling_is_not_stuck() -> None:
    """A rain gauge when the rain stops, humidity saturated at 100%: a run at the lowest or highest value the
    past reached is where a working sensor rests; frozen inside the range, or at a new high, it is stuck."""
    rng = np.random.default_rng(5)
    rain = [0.0] * 6 + list(np.round(rng.gamma(2.0, 1.5, 60), 1))  # dry hours, then showers
    assert not assess([*rain, *[0.0] * 14]).has(Kind.STUCK)
    humidity = [100.0] * 3 + list(np.round(np.clip(rng.normal(90, 6, 60), 0, 99.9), 1))
    assert not assess([*humidity, *[100.0] * 14]).has(Kind.STUCK)
    assert assess([*humidity, *[float(np.median(humidity))] * 14]).has(Kind.STUCK)
    # frozen at a new high as the reading climbed (a morning's temperature): not a ceiling it ever rested at
    rising = list(np.round(15 + 0.2 * np.arange(60) + rng.normal(0, 0.3, 60), 2))
    assert assess([*rising, *[rising[-1] + 0.5] * 14]).has(Kind.STUCK)


def test_a_constant_sensor_is_never_stuck() -> None:
    assert not assess([5.0] * 100).kinds


def test_a_slow_drift_is_flagged_once_it_has_gone_far_enough() -> None:
    noise = _noise(300, seed=11, level=0.0, sd=1.0)
    series = noise + np.concatenate([np.zeros(150), 0.15 * np.arange(150)])  # 0.15 deviations a reading
    verdicts = rolling(list(series), last=150)
    first = next(i for i, a in enumerate(verdicts) if a.has(Kind.DRIFT))
    assert 20 <= first <= 60  # found after the level moved 3 to 9 deviations, not at once
    assert not any(a.has(Kind.SPIKE) for a in verdicts[:first])  # no single reading was far: it crept
    assert verdicts[first].drift_z is not None and verdicts[first].drift_z > 5


def test_when_mad_is_zero_the_scale_is_the_sensor_s_step_then_its_level() -> None:
    assert robust_scale(np.array([2.0] * 15 + [2.5] * 5 + [3.5])) == 0.5
    assert abs(robust_scale(np.array([20.0] * 30)) - 0.2) < 1e-12  # a single value: 1% of it
    assert robust_scale(np.array([0.0] * 30)) is None  # zeros give no scale: no spike can be measured
    assert not assess([2.0] * 15 + [2.5] * 10 + [2.5]).has(Kind.SPIKE)  # one step off is one unit
    assert assess([2.0] * 15 + [2.5] * 10 + [6.0]).has(Kind.SPIKE)  # eight steps off
    assert not assess([0.0] * 30 + [7.0]).kinds


def test_a_rule_s_threshold_replaces_the_default() -> None:
    series = [*_noise(100), 2.0 + 7 * 0.3]  # about 7 deviations
    assert assess(series).has(Kind.SPIKE)
    assert not assess(series, Limits().with_threshold(10.0)).has(Kind.SPIKE)


def test_trailing_run_counts_the_equal_readings_at_the_end() -> None:
    assert trailing_run(np.array([])) == 0
    assert trailing_run(np.array([1.0, 2.0, 2.0])) == 2
    assert trailing_run(np.array([3.0, 3.0])) == 2


def test_kinds_have_labels_in_both_languages() -> None:
    assert [k.label("zh_CN") for k in Kind] == ["突变", "卡滞", "漂移"]
    assert [k.label("en") for k in Kind] == ["spike", "stuck", "drift"]
