"""boussole/anomalies.py on hand-made series: what is flagged, what is not, no look-ahead, the
warm-up, the volume floor and the kpi_anomalies table (an in-memory DuckDB, no dbt, no
Dagster).

The series: a weekday level of 100 (weekend 50 and 40) times exp(noise), the noise cycling
through +2%, -1%, +1.5%, -2%, +0.5% (five days, so it does not line up with the week). A
value is thus within 2% of its weekday's level, and its robust scale (the noise and the
error of the level learnt from it) is between 2% and 3.5%. So:
- a day at 300 instead of 100 is log(3) = 1.10 above its expected value, over 30 scales: a
  critical spike, far above an upper bound of at most 100 x exp(4 x 0.035) = 115;
- a fall to 60% is log(0.6) = -0.51, over 14 scales down a day: a critical drop on the day,
  and the CUSUM (each score clipped at 2.5, minus the allowance 0.35: 2.15 a day) passes its
  threshold of 8 on the fourth day (4 x 2.15 = 8.6), which is then a level shift.
"""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import numpy as np
import pandas as pd
import pytest

from boussole.anomalies import (
    ANOMALY_COLUMNS,
    french_public_holidays,
    judge_series,
    kpi_anomalies,
)

MONDAY = date(2026, 1, 5)
WEEKLY = np.array([100, 100, 100, 100, 100, 50, 40], dtype=float)
NOISE = np.array([0.02, -0.01, 0.015, -0.02, 0.005])
FLAGGED = ("warning", "critical")


def weekly_series(days: int, start: date = MONDAY, level: float = 1.0) -> pd.Series:
    dates = pd.date_range(start, periods=days, freq="D")
    t = np.arange(days)
    values = level * WEEKLY[dates.day_of_week] * np.exp(NOISE[t % len(NOISE)])
    return pd.Series(values, index=dates)


def test_a_clean_weekly_series_has_no_flag_after_its_28_days_of_warm_up():
    result = judge_series(weekly_series(140))

    assert (result["severity"].iloc[:28] == "not_enough_history").all()
    assert result["expected_value"].iloc[:28].isna().all()
    assert (result["severity"].iloc[28:] == "none").all()
    assert result["kind"].isna().all()
    # Its expected values follow the week: about 100 on weekdays, 50 and 40 on the weekend.
    judged = result.iloc[28:]
    weekday = judged.index.day_of_week
    assert judged["expected_value"][weekday < 5].between(95, 105).all()
    assert judged["expected_value"][weekday == 6].between(37, 43).all()


def test_a_spike_is_critical_and_outside_its_bounds():
    series = weekly_series(70)
    spike_day = series.index[49]  # a Monday, usually about 100
    series[spike_day] = 300.0

    verdict = judge_series(series).loc[spike_day]

    assert verdict["severity"] == "critical"
    assert verdict["kind"] == "spike"
    assert verdict["score"] > 30
    assert 95 < verdict["expected_value"] < 105
    assert 100 < verdict["upper_bound"] < 115 < 300
    assert 85 < verdict["lower_bound"] < 100
    # The days after it are normal again: the spike barely moved the baseline.
    after = judge_series(series).loc[series.index[50] :]
    assert (after["severity"] == "none").all()


def test_a_day_at_zero_of_a_positive_series_is_a_critical_drop():
    series = weekly_series(60)
    series.iloc[45] = 0.0

    verdict = judge_series(series).iloc[45]

    assert (verdict["severity"], verdict["kind"]) == ("critical", "drop")
    assert verdict["value"] < verdict["lower_bound"]


def test_a_level_shift_is_a_drop_on_the_day_then_a_level_shift_then_the_new_normal():
    series = weekly_series(140)
    series.iloc[70:] *= 0.6

    result = judge_series(series)

    assert (result["severity"].iloc[28:70] == "none").all()
    assert (result["severity"].iloc[70], result["kind"].iloc[70]) == ("critical", "drop")
    assert result["kind"].iloc[73] == "level_shift"
    assert result["severity"].iloc[73] in FLAGGED
    # Re-anchored on the new level: a week later it is the normal one, with no more flags.
    later = result.iloc[84:]
    assert (later["severity"] == "none").all()
    assert later["expected_value"][later.index.day_of_week < 5].between(57, 63).all()


def test_no_look_ahead_a_prefix_is_judged_exactly_as_in_the_full_series():
    series = weekly_series(140)
    series.iloc[60] = 250.0
    series.iloc[90:] *= 1.5
    series.iloc[100] = np.nan  # a day without value

    full = judge_series(series)

    for length in (29, 61, 75, 95, 120):
        prefix = judge_series(series.iloc[:length])
        pd.testing.assert_frame_equal(prefix, full.loc[prefix.index], check_freq=False)
        assert len(prefix) == length - (length > 100)


def test_below_the_minimum_history_it_says_so_instead_of_guessing():
    short = judge_series(weekly_series(28))
    assert len(short) == 28
    assert (short["severity"] == "not_enough_history").all()
    assert short[["expected_value", "lower_bound", "upper_bound", "score"]].isna().all().all()

    # The 29th value is the first judged; at week grain, the 9th.
    assert judge_series(weekly_series(29))["severity"].iloc[-1] == "none"
    weeks = pd.Series(
        [500.0, 510, 495, 505, 498, 502, 507, 493, 501],
        index=pd.date_range(MONDAY, periods=9, freq="7D"),
    )
    assert list(judge_series(weeks, "week")["severity"]) == ["not_enough_history"] * 8 + ["none"]


def test_a_holiday_is_expected_like_a_sunday():
    # Easter Monday 2026 is April 6; the series is at its Sunday level (40) that day.
    easter_monday = date(2026, 4, 6)
    assert {easter_monday, date(2026, 5, 14), date(2026, 5, 25), date(2026, 7, 14)} <= (
        french_public_holidays([2026])
    )
    series = weekly_series(70, start=date(2026, 2, 16))
    series[pd.Timestamp(easter_monday)] = 40.0

    with_calendar = judge_series(series, holidays=french_public_holidays([2026]))
    without = judge_series(series)

    assert with_calendar.loc[pd.Timestamp(easter_monday), "severity"] == "none"
    assert without.loc[pd.Timestamp(easter_monday), "kind"] == "drop"


# --- kpi_anomalies on a small mart ------------------------------------------------------


def cells(kpi_id, grain, series, dimension="all", dimension_value="all", denominator=None):
    step = 1 if grain == "day" else 7
    return [
        {
            "kpi_id": kpi_id,
            "grain": grain,
            "period_start": when.date(),
            "dimension": dimension,
            "dimension_value": dimension_value,
            "value": value,
            "numerator": value if denominator is None else value * denominator,
            "denominator": denominator,
            "is_complete_period": when.date() < MONDAY + timedelta(days=42 if step == 1 else 35),
        }
        for when, value in series.items()
    ]


@pytest.fixture
def mart() -> duckdb.DuckDBPyConnection:
    """43 days of sessions (the last one in progress; day 40 has no row: 0 sessions) for the
    company, the Organic channel (about 60 a day) and the Email channel (about 5 a day, below
    the volume floor of 20), 6 weeks of weekly sessions, and a supporting KPI."""
    company = weekly_series(43)
    rows = cells("sessions", "day", company.drop(company.index[40]))
    rows += cells("sessions", "day", weekly_series(43, level=0.6), "channel", "Organic")
    rows += cells("sessions", "day", weekly_series(43, level=0.05), "channel", "Email")
    weeks = pd.date_range(MONDAY, periods=6, freq="7D")
    rows += cells("sessions", "week", pd.Series(600 * np.exp(NOISE[[0, 1, 2, 3, 4, 0]]), weeks))
    rows += cells("bounce_rate", "day", weekly_series(43, level=0.004), denominator=100.0)
    conn = duckdb.connect()
    conn.register("rows", pd.DataFrame(rows))
    conn.execute("create table kpi_values as select * from rows")
    conn.execute(
        "create table kpi_catalogue as select * from (values "
        "('sessions', 'key', 'count', true), ('bounce_rate', 'supporting', 'ratio', false)) "
        "as t(kpi_id, tier, unit, is_additive)"
    )
    return conn


def test_kpi_anomalies_judges_the_key_kpis_company_and_slices_with_enough_volume(mart):
    result = kpi_anomalies(mart, table="kpi_anomalies")

    assert tuple(result.columns) == ANOMALY_COLUMNS
    assert set(result["kpi_id"]) == {"sessions"}  # bounce_rate is not a key KPI
    day = result[result["grain"] == "day"]
    # Email (about 5 sessions a day) is below the floor; the day in progress is not judged.
    assert set(zip(day["dimension"], day["dimension_value"], strict=True)) == {
        ("all", "all"),
        ("channel", "Organic"),
    }
    company = day[day["dimension"] == "all"].set_index("period_start")
    assert len(company) == 42
    assert company.index.max() == MONDAY + timedelta(days=41)
    assert (company["severity"].iloc[:28] == "not_enough_history").all()
    # Day 40 has no row: for a count, that is 0 sessions, a critical drop.
    missing = company.loc[MONDAY + timedelta(days=40)]
    assert (missing["value"], missing["severity"], missing["kind"]) == (0.0, "critical", "drop")
    assert missing["score"] < -6
    others = company.drop(MONDAY + timedelta(days=40)).iloc[28:]
    assert (others["severity"] == "none").all()
    # Five complete weeks (the sixth in progress): all warm-up.
    week = result[result["grain"] == "week"]
    assert list(week["severity"]) == ["not_enough_history"] * 5

    written = mart.execute(
        "select count(*), count(*) filter (where severity = 'critical'), "
        "min(period_start)::varchar from kpi_anomalies"
    ).fetchone()
    assert written == (len(result), 1, "2026-01-05")
    types = dict(
        mart.execute("select column_name, column_type from (describe kpi_anomalies)").fetchall()
    )
    assert (types["period_start"], types["score"]) == ("DATE", "DOUBLE")


def test_kpi_anomalies_reads_the_catalogue_entries_and_a_lower_floor_admits_a_slice(mart):
    catalogue = [
        {"id": "sessions", "tier": "key", "unit": "count", "additive": True},
        {"id": "bounce_rate", "tier": "key", "unit": "ratio"},
    ]

    result = kpi_anomalies(mart, catalogue, grains=("day",), min_volume=4)

    assert set(result["kpi_id"]) == {"sessions", "bounce_rate"}
    sessions = result[result["kpi_id"] == "sessions"]
    assert ("channel", "Email") in set(
        zip(sessions["dimension"], sessions["dimension_value"], strict=True)
    )
    assert set(result["grain"]) == {"day"}


def test_a_day_that_is_not_complete_is_a_gap_not_a_zero(mart):
    # Day 40 of the Organic channel has a row, but a source missed that day: it is not
    # complete, so it is neither judged nor taken as 0 (which would be a critical drop).
    gap = MONDAY + timedelta(days=40)
    mart.execute(
        "update kpi_values set value = 0, is_complete_period = false "
        "where dimension_value = 'Organic' and grain = 'day' and period_start = ?",
        [gap],
    )
    organic = kpi_anomalies(mart, grains=("day",)).query("dimension_value == 'Organic'")
    assert gap not in set(organic["period_start"])
    assert set(organic["period_start"]) == {
        MONDAY + timedelta(days=n) for n in range(42) if n != 40
    }
    assert (organic["severity"].iloc[28:] == "none").all()
