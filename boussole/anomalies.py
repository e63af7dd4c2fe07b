"""Anomalies in the KPIs themselves: a seasonal, robust baseline judged without look-ahead.

The method (`judge_series` for one series, `judge_matrix` for many aligned ones) reads a
series of day or week values in order and judges each period only against the periods before
it, so a backfill flags exactly what a daily run would have flagged on the day:

1. Warm-up. The first `min_history` values (28 days, 8 weeks) are history only; their periods
   say `not_enough_history`. At the end of the warm-up the series chooses its scale once: a
   series whose warm-up stays above a tenth of its median is judged on log(value + offset),
   so that the weekly pattern, the noise and the anomalies are relative (a Sunday at half a
   Monday, a day at half its usual volume); any other (near zero, negative) on the values
   themselves. The offset (1% of the warm-up median) keeps a later zero finite: it scores as
   a steep drop.
2. Baseline. A robust Holt-Winters: a level, a damped trend and, at day grain, one offset per
   weekday (a public holiday is expected to look like a Sunday). They start from the warm-up
   (weekday medians, a Theil-Sen slope, the median of the last two weeks) and then follow
   each new value with its error clipped at `huber` robust deviations, so that one aberrant
   value barely moves them. The expected value of a period is level + trend + its weekday's
   offset, computed before the period is seen.
3. Scale and score. The scale is the MAD (x 1.4826; the mean absolute deviation when over half
   the residuals tie) of the last `scale_window` one-period-ahead residuals, with a floor
   (`min_relative_scale`); it starts from leave-one-out residuals of the warm-up, which carry
   the error of a baseline fitted on four weeks. score = (value - expected) / scale; the
   bounds are expected +/- `warning_z` scales (back on the KPI's scale).
4. Verdict. |score| >= `warning_z` is a spike or a drop: a warning, critical from
   `critical_z`. Beside this point test, a two-sided CUSUM of the scores (each clipped at
   `cusum_clip`, so that one spike cannot raise it alone; allowance `cusum_k`, threshold
   `cusum_h`) accumulates small persistent deviations. When it crosses, the period is a
   `level_shift` or a `drift` (whichever of a step and a line fits the run since the CUSUM
   left zero), a warning, critical when the move reaches `critical_z` scales; the level is
   then re-anchored on the run, so that the new level becomes the normal one within days
   instead of alarming every day until the smoothing catches up. A level shift or a drift can
   be flagged while the value is within its point bounds: the accumulated evidence decides.

`kpi_anomalies` applies the method to the key KPIs (tier `key` in the catalogue) of the
`kpi_values` mart at day and week grain, for the company and each slice value with enough
volume (defined in its docstring), and returns (or writes) the `kpi_anomalies` table.
benchmarks/anomaly_benchmark.py measures the method at day grain on labelled synthetic
series, side by side with elementary's default z-score; the day parameters were tuned there.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import duckdb
import numpy as np
import pandas as pd

GRAINS = ("day", "week")
SEVERITIES = ("none", "warning", "critical")
NOT_ENOUGH_HISTORY = "not_enough_history"
KINDS = (None, "spike", "drop", "level_shift", "drift")
_SPIKE, _DROP, _SHIFT, _DRIFT = 1, 2, 3, 4
# Severity codes of judge_matrix: -2 no value, -1 not enough history, then SEVERITIES' index.
_NO_VALUE, _WARMING_UP = -2, -1
_SUNDAY = 6
_MAD_TO_SIGMA = 1.4826
_MEAN_ABS_TO_SIGMA = 1.2533

# The kpi_anomalies table: its columns and their SQL types.
ANOMALY_SCHEMA = {
    "kpi_id": "varchar",
    "grain": "varchar",
    "period_start": "date",
    "dimension": "varchar",
    "dimension_value": "varchar",
    "value": "double",
    "expected_value": "double",
    "lower_bound": "double",
    "upper_bound": "double",
    "score": "double",
    "severity": "varchar",
    "kind": "varchar",
}
ANOMALY_COLUMNS = tuple(ANOMALY_SCHEMA)


@dataclass(frozen=True)
class DetectionParams:
    """The method's parameters for one grain (see the module docstring for their roles).

    season: periods in the seasonal cycle (7 at day grain, 1 at week grain: no pattern).
    min_history: values seen before the first verdict.
    scale_window: one-period-ahead residuals the scale is the MAD of.
    level_alpha: smoothing of the level.
    trend_beta, trend_damping: learning rate of the trend, and its decay per period (so a
        ramp seen in the warm-up, a new slice filling up, is not extrapolated for ever).
    season_gamma: smoothing of the weekday offsets.
    huber: robust deviations beyond which a value's error is clipped before it updates them.
    warning_z, critical_z: |score| of a warning and of a critical spike or drop.
    cusum_k, cusum_h, cusum_clip: CUSUM allowance, threshold and clip of the scores it adds.
    min_relative_scale: floor of the scale, relative to the level (1% by default), so that a
        series that barely moves does not turn every small change into an anomaly.
    """

    season: int
    min_history: int
    scale_window: int
    level_alpha: float = 0.15
    trend_beta: float = 0.003
    trend_damping: float = 0.98
    season_gamma: float = 0.1
    huber: float = 2.0
    warning_z: float = 4.0
    critical_z: float = 6.0
    cusum_k: float = 0.35
    cusum_h: float = 8.0
    cusum_clip: float = 2.5
    min_relative_scale: float = 0.01


# Day: tuned on benchmarks/anomaly_benchmark.py's tuning seeds. Week: no weekly pattern, a
# shorter warm-up, and a level and a trend that follow faster (a week averages out the noise
# of its days; a trend half-life of 3 weeks instead of 5), not benchmarked.
DEFAULT_PARAMS = {
    "day": DetectionParams(season=7, min_history=28, scale_window=56),
    "week": DetectionParams(
        season=1,
        min_history=8,
        scale_window=26,
        level_alpha=0.3,
        trend_damping=0.8,
        season_gamma=0.0,
    ),
}


@dataclass(frozen=True)
class Verdicts:
    """judge_matrix's answer, one (series x period) array each. `severity` holds None where
    the series has no value, `not_enough_history` during the warm-up, then none, warning or
    critical; `kind` is None unless flagged. expected, lower, upper and score are NaN where
    there is no verdict."""

    expected: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    score: np.ndarray
    severity: np.ndarray
    kind: np.ndarray


def french_public_holidays(years: Iterable[int]) -> set[date]:
    """The eleven public holidays of metropolitan France in `years` (Easter by the anonymous
    Gregorian computus), for the `holidays` argument of the functions below."""
    days = set()
    for year in years:
        a, b, c = year % 19, year // 100, year % 100
        d, e = divmod(b, 4)
        f = (b + 8) // 25
        g = (b - f + 1) // 3
        h = (19 * a + b - d - g + 15) % 30
        i, k = divmod(c, 4)
        m = (32 + 2 * e + 2 * i - h - k) % 7
        n = (a + 11 * h + 22 * m) // 451
        month, day = divmod(h + m - 7 * n + 114, 31)
        easter = date(year, month, day + 1)
        days |= {easter + timedelta(days=offset) for offset in (1, 39, 50)}
        days |= {date(year, mo, dd) for mo, dd in ((1, 1), (5, 1), (5, 8), (7, 14), (8, 15))}
        days |= {date(year, mo, dd) for mo, dd in ((11, 1), (11, 11), (12, 25))}
    return days


def seasonal_slots(
    periods: Sequence[date] | pd.DatetimeIndex, grain: str, holidays: Collection[date] = ()
) -> np.ndarray:
    """The seasonal slot of each period: its weekday (Monday 0) at day grain, a holiday
    counting as a Sunday; 0 at week grain."""
    index = pd.DatetimeIndex(periods)
    if grain != "day":
        return np.zeros(len(index), dtype=np.int64)
    slots = index.day_of_week.to_numpy().astype(np.int64)
    if holidays:
        slots[index.normalize().isin(pd.DatetimeIndex(sorted(holidays)))] = _SUNDAY
    return slots


def judge_series(
    values: pd.Series,
    grain: str = "day",
    *,
    holidays: Collection[date] = (),
    params: DetectionParams | None = None,
) -> pd.DataFrame:
    """Judge one series: `values` indexed by period start (consecutive days, or weeks on
    Monday; a missing period or a NaN is a period without value, neither judged nor learnt
    from). Returns one row per period with a value, indexed by period start: value,
    expected_value, lower_bound, upper_bound, score, severity (`not_enough_history`, none,
    warning, critical) and kind (spike, drop, level_shift, drift; None when not flagged)."""
    step = pd.Timedelta(days=1 if grain == "day" else 7)
    index = pd.DatetimeIndex(values.index)
    full = pd.date_range(index.min(), index.max(), freq=step) if len(index) else index
    aligned = values.set_axis(index).reindex(full).astype(float)
    verdicts = judge_matrix(
        aligned.to_numpy()[None, :], seasonal_slots(full, grain, holidays), grain, params=params
    )
    frame = pd.DataFrame(
        {
            "value": aligned.to_numpy(),
            "expected_value": verdicts.expected[0],
            "lower_bound": verdicts.lower[0],
            "upper_bound": verdicts.upper[0],
            "score": verdicts.score[0],
            "severity": pd.array(verdicts.severity[0], dtype="str"),
            "kind": pd.array(verdicts.kind[0], dtype="str"),
        },
        index=full.rename("period_start"),
    )
    return frame[frame["severity"].notna()]


def judge_matrix(
    values: np.ndarray,
    slots: np.ndarray,
    grain: str = "day",
    *,
    params: DetectionParams | None = None,
) -> Verdicts:
    """Judge many series at once: `values` is (series x periods), every row on the same
    consecutive periods (NaN where a series has no value, before its start included), `slots`
    the seasonal slot of each period (`seasonal_slots`). Each row is judged on its own, in
    period order, exactly as judge_series would; the loop runs over periods with numpy across
    series, which keeps hundreds of series in milliseconds."""
    p = params or DEFAULT_PARAMS[grain]
    values = np.asarray(values, dtype=float)
    n_series, n_periods = values.shape
    expected, lower, upper, score = (np.full(values.shape, np.nan) for _ in range(4))
    severity = np.where(np.isnan(values), _NO_VALUE, _WARMING_UP).astype(np.int8)
    kind = np.zeros(values.shape, dtype=np.int8)

    state = _State.empty(n_series, n_periods, p)
    seen = np.zeros(n_series, dtype=np.int64)
    for t in range(n_periods):
        starting = np.flatnonzero(~state.ready & (seen >= p.min_history))
        if starting.size:
            state.start(starting, values[starting, :t], slots[:t], p)
        observed = ~np.isnan(values[:, t])
        seen += observed
        rows = np.flatnonzero(observed & state.ready)
        if rows.size:
            verdict = state.step(rows, t, values[rows, t], int(slots[t]), p)
            expected[rows, t], lower[rows, t], upper[rows, t], score[rows, t] = verdict[:4]
            severity[rows, t], kind[rows, t] = verdict[4:]

    severity_names = np.array([None, NOT_ENOUGH_HISTORY, *SEVERITIES], dtype=object)
    return Verdicts(
        expected,
        lower,
        upper,
        score,
        severity_names[severity.astype(np.int64) + 2],
        np.array(KINDS, dtype=object)[kind],
    )


@dataclass
class _State:
    """Per-series state of judge_matrix (one entry or row per series)."""

    ready: np.ndarray  # warm-up over
    log_scale: np.ndarray  # judged on log(value + offset)
    offset: np.ndarray
    scale_floor: np.ndarray  # absolute floor of the scale (in the judged scale)
    level: np.ndarray  # deseasonalised level at period `at`
    trend: np.ndarray  # change of the level per period
    at: np.ndarray  # period of the last value learnt from
    seasonal: np.ndarray  # (series x season) offsets
    residuals: np.ndarray  # (series x scale_window) ring of recent residuals, NaN = empty
    cursor: np.ndarray  # next slot of the ring
    cusum_up: np.ndarray
    cusum_down: np.ndarray
    run_up: np.ndarray  # period where the current upward CUSUM run began
    run_down: np.ndarray
    deseasonalised: np.ndarray  # (series x periods), for re-anchoring on a run

    @classmethod
    def empty(cls, n_series: int, n_periods: int, p: DetectionParams) -> _State:
        def zeros(dtype: type = float) -> np.ndarray:
            return np.zeros(n_series, dtype=dtype)

        return cls(
            ready=zeros(bool),
            log_scale=zeros(bool),
            offset=zeros(),
            scale_floor=zeros(),
            level=zeros(),
            trend=zeros(),
            at=zeros(np.int64),
            seasonal=np.zeros((n_series, p.season)),
            residuals=np.full((n_series, p.scale_window), np.nan),
            cursor=zeros(np.int64),
            cusum_up=zeros(),
            cusum_down=zeros(),
            run_up=zeros(np.int64),
            run_down=zeros(np.int64),
            deseasonalised=np.full((n_series, n_periods), np.nan),
        )

    def start(self, rows: np.ndarray, history: np.ndarray, slots: np.ndarray, p: DetectionParams):
        """End the warm-up of `rows`, each with exactly p.min_history values in `history`
        (its periods so far, NaN = no value); `slots` those periods' seasonal slots."""
        n = p.min_history
        row_of, seen = np.nonzero(~np.isnan(history))
        seen = seen.reshape(len(rows), n)  # row-major: each row's n periods, in order
        y = history[row_of, seen.ravel()].reshape(len(rows), n)
        slot = slots[seen]
        median = np.median(y, axis=1)
        log_scale = (y.min(axis=1) > 0) & (y.min(axis=1) >= 0.1 * median)
        self.log_scale[rows] = log_scale
        self.offset[rows] = np.where(log_scale, 0.01 * median, 0.0)
        typical = np.median(np.abs(y), axis=1)
        typical = np.where(typical > 0, typical, np.abs(y).max(axis=1))
        self.scale_floor[rows] = np.where(
            log_scale, p.min_relative_scale, np.maximum(p.min_relative_scale * typical, 1e-9)
        )
        g = self._transform(rows[:, None], y)
        seasonal = np.zeros((len(rows), p.season))
        if p.season > 1:
            for s in range(p.season):
                seasonal[:, s] = _row_median(np.where(slot == s, g, np.nan))  # NaN if none
            seasonal -= np.nanmean(seasonal, axis=1, keepdims=True)
            seasonal = np.nan_to_num(seasonal)
        deseasonalised = g - np.take_along_axis(seasonal, slot, axis=1)
        # Theil-Sen slope: the median of the slopes between every two warm-up values.
        i, j = np.triu_indices(n, k=1)
        trend = _row_median(
            (deseasonalised[:, j] - deseasonalised[:, i]) / (seen[:, j] - seen[:, i])
        )
        last = seen[:, -1]
        recent = slice(-max(2 * p.season, 4), None)
        self.level[rows] = np.median(
            deseasonalised[:, recent] + trend[:, None] * (last[:, None] - seen[:, recent]), axis=1
        )
        self.trend[rows], self.at[rows], self.seasonal[rows] = trend, last, seasonal
        # Each warm-up value against the median of the other values of its slot (detrended):
        # residuals with the error of a baseline fitted on a short warm-up, which the first
        # verdicts carry; one-period-ahead residuals replace them as they come.
        detrended = g - trend[:, None] * seen
        others = (slot[:, :, None] == slot[:, None, :]) & ~np.eye(n, dtype=bool)
        seed = detrended - _row_median(np.where(others, detrended[:, None, :], np.nan))
        seed = seed[:, -p.scale_window :]
        self.residuals[rows, : seed.shape[1]] = seed
        self.cursor[rows] = seed.shape[1] % p.scale_window
        self.ready[rows] = True

    def _transform(self, rows: np.ndarray, y: np.ndarray) -> np.ndarray:
        log_rows = self.log_scale[rows]
        safe = np.where(log_rows, np.maximum(y, 0) + self.offset[rows], 1.0)
        return np.where(log_rows, np.log(safe), y)

    def _untransform(self, rows: np.ndarray, g: np.ndarray) -> np.ndarray:
        log_rows = self.log_scale[rows]
        return np.where(log_rows, np.exp(np.where(log_rows, g, 0.0)) - self.offset[rows], g)

    def _scale(self, rows: np.ndarray) -> np.ndarray:
        recent = self.residuals[rows]
        deviation = np.abs(recent - _row_median(recent)[:, None])
        scale = _MAD_TO_SIGMA * _row_median(deviation)
        # Over half the residuals tie (a series that often repeats its value): MAD is 0.
        tied = scale <= 0
        scale[tied] = _MEAN_ABS_TO_SIGMA * np.nanmean(deviation[tied], axis=1)
        return np.maximum(scale, self.scale_floor[rows])

    def step(self, rows: np.ndarray, t: int, y: np.ndarray, slot: int, p: DetectionParams):
        """Judge period `t` of `rows` (which have a value there), then learn from it."""
        g = self._transform(rows, y)
        elapsed = t - self.at[rows]
        level = self.level[rows] + self.trend[rows] * elapsed
        self.trend[rows] *= p.trend_damping**elapsed
        forecast = level + self.seasonal[rows, slot]
        error = g - forecast
        scale = self._scale(rows)
        z = error / scale
        self.deseasonalised[rows, t] = g - self.seasonal[rows, slot]

        severity = np.where(np.abs(z) >= p.critical_z, 2, (np.abs(z) >= p.warning_z).astype(int))
        kind = np.where(severity > 0, np.where(z > 0, _SPIKE, _DROP), 0)

        clipped = np.clip(z, -p.cusum_clip, p.cusum_clip)
        up = np.maximum(0.0, self.cusum_up[rows] + clipped - p.cusum_k)
        down = np.maximum(0.0, self.cusum_down[rows] - clipped - p.cusum_k)
        self.run_up[rows] = np.where((self.cusum_up[rows] == 0) & (up > 0), t, self.run_up[rows])
        self.run_down[rows] = np.where(
            (self.cusum_down[rows] == 0) & (down > 0), t, self.run_down[rows]
        )
        self.cusum_up[rows], self.cusum_down[rows] = up, down

        # Learn from the value, its error clipped (a shift is re-anchored below instead).
        learnt = np.clip(error, -p.huber * scale, p.huber * scale)
        self.level[rows] = level + p.level_alpha * learnt
        self.trend[rows] += p.trend_beta * learnt
        self.at[rows] = t
        self.seasonal[rows, slot] += p.season_gamma * (1 - p.level_alpha) * learnt
        self.residuals[rows, self.cursor[rows]] = error
        self.cursor[rows] = (self.cursor[rows] + 1) % p.scale_window

        for i in np.flatnonzero((up > p.cusum_h) | (down > p.cusum_h)):
            row = rows[i]
            begun = self.run_up[row] if up[i] > p.cusum_h else self.run_down[row]
            when = begun + np.flatnonzero(~np.isnan(self.deseasonalised[row, begun : t + 1]))
            # The run's values brought to period t along the trend, against the level expected.
            run = self.deseasonalised[row, when] + self.trend[row] * (t - when)
            kind[i], anchored = _shift_or_drift(run, scale[i])
            moved = abs(anchored - level[i]) / scale[i]
            severity[i] = 2 if max(moved, abs(z[i])) >= p.critical_z else max(severity[i], 1)
            self.level[row] = anchored
            self.cusum_up[row] = self.cusum_down[row] = 0.0

        band = p.warning_z * scale
        return (
            self._untransform(rows, forecast),
            self._untransform(rows, forecast - band),
            self._untransform(rows, forecast + band),
            z,
            severity,
            kind,
        )


def _shift_or_drift(run: np.ndarray, scale: float) -> tuple[int, float]:
    """Whether a CUSUM run (its values, oldest first) is a level shift or a drift, and the
    level it leaves: a step (the means before and after a change point) against a line
    through the values, by least squares, the step paying 2 scale^2 for its change point (as
    Akaike's criterion charges a parameter). A shift leaves the median after its change
    point, a drift the line's last value. On runs of a few noisy values the two are often
    alike: the benchmark tells them apart about two times in three."""
    n = len(run)
    if n < 6:
        return _SHIFT, float(np.median(run))
    x = np.arange(n) - (n - 1) / 2
    slope = float(x @ run / (x @ x))
    line = run.mean() + slope * x
    line_error = float(np.sum((run - line) ** 2))
    # Every change point that leaves at least 3 values after it, at once: the squared errors
    # around the means before and after (one value after would anchor on an outlier).
    totals, squares = np.cumsum(run), np.cumsum(run**2)
    before = np.arange(1, n - 2)
    step_errors = (
        squares[before - 1]
        - totals[before - 1] ** 2 / before
        + (squares[-1] - squares[before - 1])
        - (totals[-1] - totals[before - 1]) ** 2 / (n - before)
    )
    change = int(np.argmin(step_errors)) + 1
    if line_error < step_errors[change - 1] + 2 * scale**2:
        return _DRIFT, float(line[-1])
    return _SHIFT, float(np.median(run[change:]))


def _row_median(a: np.ndarray) -> np.ndarray:
    """The median along the last axis, NaN left out (NaN when all are): np.nanmedian is
    slow on many small rows."""
    ordered = np.sort(a, axis=-1)  # NaN sorts last
    count = (~np.isnan(a)).sum(axis=-1, keepdims=True)
    low = np.take_along_axis(ordered, np.maximum(count - 1, 0) // 2, axis=-1)
    high = np.take_along_axis(ordered, count // 2, axis=-1)
    return np.where(count > 0, (low + high) / 2, np.nan)[..., 0]


def _trailing_share(hits: np.ndarray, counted: np.ndarray, window: int) -> np.ndarray:
    """Row by row, the share of the `counted` periods among each period and the `window` - 1
    before it that are `hits` (0 when none is counted)."""
    totals = []
    for mask in (hits, counted):
        total = np.cumsum(mask, axis=1)
        total[:, window:] -= total[:, :-window].copy()
        totals.append(total)
    return totals[0] / np.maximum(totals[1], 1)


# --- the kpi_anomalies table ------------------------------------------------------------

MIN_VOLUME = 20
MIN_DENSITY = 0.8


def kpi_anomalies(
    conn: duckdb.DuckDBPyConnection,
    catalogue: Sequence[Mapping[str, Any]] | None = None,
    *,
    grains: Sequence[str] = GRAINS,
    holidays: Collection[date] | None = None,
    min_volume: float = MIN_VOLUME,
    min_density: float = MIN_DENSITY,
    params: Mapping[str, DetectionParams] | None = None,
    table: str | None = None,
) -> pd.DataFrame:
    """The kpi_anomalies rows of the key KPIs in `conn`'s `kpi_values`.

    catalogue: the KPI catalogue entries as boussole.dbt_manifest.kpi_catalogue() returns them
        (keys id, tier, unit, additive); None reads the `kpi_catalogue` table of `conn`.
        Only KPIs of tier `key` are judged.
    grains: the grains judged (day and week), each with params[grain] or DEFAULT_PARAMS.
    holidays: dates judged as Sundays at day grain; None: the French public holidays
        (french_public_holidays) of the years of the data, as benchmarked; () for none.
    table: when given, the rows are also written to this table of `conn` (replaced, with the
        column types of ANOMALY_SCHEMA).

    A series is a KPI, grain and slice (dimension, dimension_value; 'all'/'all' for the
    company), on its complete periods (is_complete_period) from its first row to the KPI's
    last complete period; a period without row of an additive KPI is 0, of any other a
    period without value, and so is a period not complete (a source missed one of its days:
    a gap, not a drop). Its periods are judged without look-ahead (see the module docstring).

    Enough volume: a period has a row here only when, over it and the periods before it
    within the warm-up length (28 days, 8 weeks):
    (1) at least half the periods have a volume of `min_volume` (20) or more, i.e. the median
        volume reaches it. A period's volume is its `denominator` (the records a rate, mean
        or median is taken over, or the base of a combination) or, for a count without
        denominator, the count itself; a money total without denominator has no volume, and
        only (2) applies to it;
    (2) at least `min_density` (80%) of the periods are active: a value, not zero, and not
        the value of the period before. A series often zero, missing or unchanged at a grain
        (few events: a stock that a deal now and then moves, a rate over a handful of
        tickets) is a step function there, whose every step looks anomalous: it is judged
        at the coarser grain only.
    So a slice too small is skipped, and one that grows is judged from then on. The company
    series passes the same test.

    Returns one row per period with enough volume (warm-up periods included), ordered by
    kpi_id, grain, dimension, dimension_value and period_start, with the columns of
    ANOMALY_SCHEMA: value, expected_value, lower_bound and upper_bound (in the KPI's unit;
    NULL during the warm-up), score (signed, in robust scales; NULL during the warm-up),
    severity (not_enough_history, none, warning, critical) and kind (spike, drop, level_shift,
    drift; NULL unless severity is warning or critical).
    """
    kpis = _key_kpis(conn, catalogue)
    rows = conn.execute(
        """
        select kpi_id, grain, period_start, dimension, dimension_value, value, numerator,
            denominator, is_complete_period
        from kpi_values
        where grain in (select unnest(?)) and kpi_id in (select unnest(?))
        """,
        [list(grains), sorted(kpis)],
    ).df()
    if holidays is None and len(rows):
        years = pd.to_datetime(rows["period_start"]).dt.year
        holidays = french_public_holidays(range(years.min(), years.max() + 1))
    frames = [
        _judge_grain(
            grain_rows,
            grain,
            kpis,
            holidays or (),
            min_volume,
            min_density,
            (params or {}).get(grain) or DEFAULT_PARAMS[grain],
        )
        for grain, grain_rows in rows.groupby("grain", sort=False)
    ]
    result = (
        pd.concat(frames, ignore_index=True)
        .sort_values(["kpi_id", "grain", "dimension", "dimension_value", "period_start"])
        .reset_index(drop=True)
        if frames
        else pd.DataFrame({column: pd.Series(dtype=object) for column in ANOMALY_COLUMNS})
    )
    if table:
        columns = ", ".join(f"{name} {kind}" for name, kind in ANOMALY_SCHEMA.items())
        conn.execute(f"create or replace table {table} ({columns})")
        conn.register("kpi_anomalies_frame", result)
        try:
            conn.execute(f"insert into {table} select * from kpi_anomalies_frame")
        finally:
            conn.unregister("kpi_anomalies_frame")
    return result


def _key_kpis(
    conn: duckdb.DuckDBPyConnection, catalogue: Sequence[Mapping[str, Any]] | None
) -> dict[str, tuple[str, bool]]:
    """{kpi_id: (unit, additive)} of the KPIs of tier key."""
    if catalogue is None:
        found = conn.execute(
            "select kpi_id, unit, is_additive from kpi_catalogue where tier = 'key'"
        ).fetchall()
        return {kpi_id: (unit, bool(additive)) for kpi_id, unit, additive in found}
    return {
        kpi["id"]: (kpi.get("unit"), bool(kpi.get("additive")))
        for kpi in catalogue
        if kpi.get("tier") == "key"
    }


def _judge_grain(
    rows: pd.DataFrame,
    grain: str,
    kpis: Mapping[str, tuple[str, bool]],
    holidays: Collection[date],
    min_volume: float,
    min_density: float,
    p: DetectionParams,
) -> pd.DataFrame:
    """The judged periods of every key KPI and slice at one grain, as one matrix."""
    key = ["kpi_id", "dimension", "dimension_value"]
    starts = pd.to_datetime(rows["period_start"])
    periods = pd.date_range(starts.min(), starts.max(), freq="D" if grain == "day" else "7D")
    column = ((starts - periods[0]).dt.days // (1 if grain == "day" else 7)).to_numpy()
    slices = rows[key].drop_duplicates().sort_values(key).reset_index(drop=True)
    series = pd.MultiIndex.from_frame(slices).get_indexer(pd.MultiIndex.from_frame(rows[key]))
    shape = (len(slices), len(periods))

    def spread(cells: pd.Series) -> np.ndarray:
        matrix = np.full(shape, np.nan)
        matrix[series, column] = cells.to_numpy(dtype=float, na_value=np.nan)
        return matrix

    unit = rows["kpi_id"].map({kpi: unit for kpi, (unit, _) in kpis.items()})
    volume = rows["denominator"].where(
        unit != "count", rows["denominator"].fillna(rows["numerator"])
    )
    # A period not complete (in progress, or a source day missing) is a gap, never a zero.
    complete = rows["is_complete_period"].astype(bool)
    values, volumes = spread(rows["value"].where(complete)), spread(volume.where(complete))
    present = np.zeros(shape, dtype=bool)
    present[series, column] = True

    # A series runs from its first row to its KPI's last complete period.
    first = np.full(len(slices), len(periods))
    np.minimum.at(first, series, column)
    kpi_last = pd.Series(column[complete]).groupby(rows["kpi_id"].to_numpy()[complete]).max()
    last = slices["kpi_id"].map(kpi_last).to_numpy()
    index = np.arange(len(periods))
    started = (index >= first[:, None]) & (index <= last[:, None])
    additive = slices["kpi_id"].map({kpi: add for kpi, (_, add) in kpis.items()}).to_numpy(bool)
    filled = started & ~present & additive[:, None]
    values[filled] = 0.0
    has_volume = ~np.isnan(volumes).all(axis=1)
    volumes[filled & has_volume[:, None]] = 0.0

    # Trailing windows (the period and those before it): no look-ahead in the floor either.
    known = np.nan_to_num(values, nan=0.0)
    changed = np.ones(shape, dtype=bool)
    changed[:, 1:] = known[:, 1:] != known[:, :-1]
    active = started & (known != 0) & changed & ~np.isnan(values)
    enough = started & (_trailing_share(active, started, p.min_history) >= min_density)
    measured = ~np.isnan(volumes)
    large = _trailing_share(measured & (volumes >= min_volume), measured, p.min_history)
    enough &= ~has_volume[:, None] | (large >= 0.5)
    candidates = enough.any(axis=1)
    matrix = np.where(started, values, np.nan)[candidates]
    verdicts = judge_matrix(matrix, seasonal_slots(periods, grain, holidays), grain, params=p)
    judged = enough[candidates] & ~np.isnan(matrix)
    which, period = np.nonzero(judged)
    chosen = slices[candidates].reset_index(drop=True).iloc[which]
    return pd.DataFrame(
        {
            "kpi_id": chosen["kpi_id"].to_numpy(),
            "grain": grain,
            "period_start": periods[period].date,  # the mart's DATE
            "dimension": chosen["dimension"].to_numpy(),
            "dimension_value": chosen["dimension_value"].to_numpy(),
            "value": matrix[which, period],
            "expected_value": verdicts.expected[which, period],
            "lower_bound": verdicts.lower[which, period],
            "upper_bound": verdicts.upper[which, period],
            "score": verdicts.score[which, period],
            "severity": pd.array(verdicts.severity[which, period], dtype="str"),
            "kind": pd.array(verdicts.kind[which, period], dtype="str"),
        }
    )
