"""How well the KPI anomaly method detects anomalies, against elementary's default z-score.

Builds labelled synthetic daily series, runs on them the production method of
boussole/anomalies.py (`judge_matrix`, day grain, default parameters, the French public
holidays as its calendar, as kpi_anomalies does by default; `--without-holidays` gives it
none) and elementary's default method (each point's z-score against the mean and sample
standard deviation of the 14 points before it, flagged when |z| > 3: stricter than
elementary itself, whose training set by default also holds the points being judged), and
prints recall per kind of anomaly and the false-alarm rate on normal points, side by side.

The series (182 days each):
- each seed draws a start date in 2025-2026, so that the holidays fall anywhere, and 100
  series on those days;
- four shapes: traffic counts (level 100 to 20,000 a day, Poisson on top), rates (1% to 60%),
  amounts or durations (positive, noisier), scores (NPS-like, -10 to 60, can be negative:
  judged on the values themselves rather than their log);
- a weekly pattern (weekdays within about 5-8% of each other, Saturday and Sunday at 30% to
  110% of a weekday, depending on the shape), a trend (-40% to +60% a year), noise: Student-t
  with 5 degrees of freedom (so that large normal deviations do happen), with a standard
  deviation sigma of 3% to 15% (counts, rates) or 5% to 20% (amounts) in log space, 3 to 8
  points for scores; the French public holidays, which look like a Sunday (within 10%);
- 40% are clean; the others hold one anomaly, in equal shares: a spike or a drop (one day,
  5 to 10 sigma; for counts sigma includes their Poisson noise), a level shift up or down (3
  to 6 sigma, to the end of the series), a slow drift up or down (5 to 10 sigma reached
  linearly over 14 to 35 days, then held). Multiplicative shapes move in log space (5 sigma
  of a 5%-noise series is about +28%), scores additively. Onsets fall between day 35 and the
  last day that leaves the anomaly's whole window in the series.

Labels and scores:
- a spike or a drop is detected when its day is flagged;
- a level shift is detected when a day of its window, the onset and the 6 days after, is
  flagged;
- a drift is detected when a day of its window, the ramp and the 7 days after it, is flagged;
- a false alarm is a flagged normal point: a point of day 28 or later (both methods judge
  every point from there; the production method's warm-up is 28 days) in no labelled window.
  The days after a level shift's or a drift's window are normal: a method that keeps
  flagging a new level pays for it. Holidays are normal points too (their rate is shown).
  "Flagged" is severity warning or critical for the production method.

Seeds: the figures printed by default use the evaluation seeds (1000 onwards); the method's
parameters were chosen on the tuning seeds (0 onwards, `--tuning`), never on these.

    .venv/bin/python benchmarks/anomaly_benchmark.py [--series 2000] [--tuning]
        [--without-holidays]
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from boussole.anomalies import french_public_holidays, judge_matrix, seasonal_slots

DAYS = 182
FIRST_JUDGED = 28  # the production method's warm-up; the z-score needs 14
EARLIEST_ONSET = 35
SHIFT_WINDOW = 7
ELEMENTARY_TRAINING, ELEMENTARY_SENSITIVITY = 14, 3.0
KINDS = ("spike", "drop", "level_shift", "drift")
CLEAN_SHARE = 0.4
EVALUATION_SEED, TUNING_SEED = 1000, 0
SERIES_PER_SEED = 100
HOLIDAYS = french_public_holidays(range(2024, 2028))


@dataclass
class Labelled:
    """Synthetic series and their labels."""

    values: np.ndarray  # (series x DAYS), all on the same days
    days: list[date]
    holiday: np.ndarray  # whether each day is a public holiday
    kind: list[str | None]  # the anomaly of each series, None when clean
    window: np.ndarray  # (series x DAYS) days of the series' anomaly's window


def generate(seed: int, n: int) -> Labelled:
    """`n` labelled series from `seed` (see the module docstring)."""
    rng = np.random.default_rng(seed)
    t = np.arange(DAYS)
    start = date(2025, 1, 1) + timedelta(days=int(rng.integers(0, 730)))
    days = [start + timedelta(days=int(d)) for d in t]
    slots = seasonal_slots(days, "day", HOLIDAYS)
    holiday = np.array([d in HOLIDAYS for d in days])
    values = np.empty((n, DAYS))
    window = np.zeros((n, DAYS), dtype=bool)
    kinds: list[str | None] = []
    for i in range(n):
        shape = rng.choice(["traffic", "rate", "amount", "score"], p=[0.4, 0.25, 0.2, 0.15])
        weekly = _weekly_pattern(rng, shape)
        pattern = weekly[slots] * np.where(holiday, rng.uniform(0.9, 1.1, DAYS), 1.0)
        trend = rng.uniform(-0.4, 0.6) * t / 365
        kind = None if rng.random() < CLEAN_SHARE else KINDS[int(rng.integers(len(KINDS)))]
        kinds.append(kind)
        if shape == "score":
            level, sd = rng.uniform(-10, 60), rng.uniform(3, 8)
            base = level + 8 * (pattern - 1) + trend * 20 + sd * _noise(rng)
            effect, window[i] = _anomaly(rng, kind, sd)
            values[i] = base + effect
            continue
        level = {
            "traffic": np.exp(rng.uniform(np.log(100), np.log(20000))),
            "rate": rng.uniform(0.01, 0.6),
            "amount": np.exp(rng.uniform(np.log(10), np.log(5000))),
        }[shape]
        sigma = rng.uniform(0.05, 0.2) if shape == "amount" else rng.uniform(0.03, 0.15)
        # The Poisson noise of a count adds about 1 / level to the log-space variance.
        total = np.sqrt(sigma**2 + 1 / level) if shape == "traffic" else sigma
        effect, window[i] = _anomaly(rng, kind, total)
        log_mean = np.log(level * pattern) + trend + sigma * _noise(rng) + effect
        values[i] = rng.poisson(np.exp(log_mean)) if shape == "traffic" else np.exp(log_mean)
        if shape == "rate":
            values[i] = np.minimum(values[i], 1.0)
    return Labelled(values, days, holiday, kinds, window)


def _noise(rng: np.random.Generator) -> np.ndarray:
    """Student-t noise with 5 degrees of freedom, scaled to a standard deviation of 1."""
    return rng.standard_t(5, DAYS) * np.sqrt(3 / 5)


def _weekly_pattern(rng: np.random.Generator, shape: str) -> np.ndarray:
    """Monday..Sunday factors: weekdays near 1, a weekend lower (counts) or near (rates)."""
    weekdays = 1 + rng.normal(0, 0.05 if shape == "rate" else 0.08, 5)
    if shape in ("traffic", "amount"):
        saturday = rng.uniform(0.35, 0.95)
        sunday = rng.uniform(0.3, saturday)
    else:
        saturday, sunday = rng.uniform(0.85, 1.1, 2)
    return np.array([*weekdays, saturday, sunday])


def _anomaly(
    rng: np.random.Generator, kind: str | None, sigma: float
) -> tuple[np.ndarray, np.ndarray]:
    """The effect of `kind` (in log space, or additive for scores) and its labelled window."""
    effect, window = np.zeros(DAYS), np.zeros(DAYS, dtype=bool)
    sign = 1 if kind == "spike" else -1 if kind == "drop" else rng.choice([-1, 1])
    if kind in ("spike", "drop"):
        onset = int(rng.integers(EARLIEST_ONSET, DAYS))
        effect[onset] = sign * rng.uniform(5, 10) * sigma
        window[onset] = True
    elif kind == "level_shift":
        onset = int(rng.integers(EARLIEST_ONSET, DAYS - SHIFT_WINDOW + 1))
        effect[onset:] = sign * rng.uniform(3, 6) * sigma
        window[onset : onset + SHIFT_WINDOW] = True
    elif kind == "drift":
        ramp = int(rng.integers(14, 36))
        onset = int(rng.integers(EARLIEST_ONSET, DAYS - ramp - SHIFT_WINDOW + 1))
        size = sign * rng.uniform(5, 10) * sigma
        effect[onset : onset + ramp] = size * np.arange(1, ramp + 1) / ramp
        effect[onset + ramp :] = size
        window[onset : onset + ramp + SHIFT_WINDOW] = True
    return effect, window


def production_flags(data: Labelled, holidays: bool = True) -> np.ndarray:
    """Flags of boussole.anomalies: severity warning or critical."""
    slots = seasonal_slots(data.days, "day", HOLIDAYS if holidays else ())
    verdicts = judge_matrix(data.values, slots, "day")
    return np.isin(verdicts.severity, ("warning", "critical"))


def elementary_flags(values: np.ndarray) -> np.ndarray:
    """elementary's default: |value - mean| > 3 sample standard deviations of the 14 before."""
    windows = np.lib.stride_tricks.sliding_window_view(values, ELEMENTARY_TRAINING, axis=1)
    training = windows[:, :-1]  # the 14 points before each point from the 15th
    mean, std = training.mean(axis=2), training.std(axis=2, ddof=1)
    current = values[:, ELEMENTARY_TRAINING:]
    flags = np.zeros(values.shape, dtype=bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        flags[:, ELEMENTARY_TRAINING:] = np.abs(current - mean) > ELEMENTARY_SENSITIVITY * std
    return flags


def score(data: Labelled, flags: np.ndarray) -> dict[str, tuple[int, int]]:
    """(hits, total) of each line of the table: recall per kind of anomaly, then false alarms
    (on normal points, on holidays, clean series with at least one)."""
    judged = np.zeros(data.values.shape, dtype=bool)
    judged[:, FIRST_JUDGED:] = True
    normal = judged & ~data.window
    result = {}
    for kind in KINDS:
        rows = [i for i, k in enumerate(data.kind) if k == kind]
        hits = sum(bool((flags[i] & data.window[i]).any()) for i in rows)
        result[f"{kind.replace('_', ' ')}: recall"] = (hits, len(rows))
    result["all anomalies: recall"] = (
        sum(hits for hits, _ in result.values()),
        sum(total for _, total in result.values()),
    )
    result["false alarms: normal points flagged"] = (
        int((flags & normal).sum()),
        int(normal.sum()),
    )
    on_holidays = normal & data.holiday[None, :]
    result["  of which on public holidays"] = (
        int((flags & on_holidays).sum()),
        int(on_holidays.sum()),
    )
    clean = np.array([k is None for k in data.kind])
    result["clean series with a false alarm"] = (
        int((flags[clean] & normal[clean]).any(axis=1).sum()),
        int(clean.sum()),
    )
    return result


def delays(data: Labelled, flags: np.ndarray, kind: str) -> list[int]:
    """Days from the onset of each detected anomaly of `kind` to its first flag."""
    found = []
    for i, k in enumerate(data.kind):
        window = np.flatnonzero(data.window[i])
        flagged = window[flags[i, window]]
        if k == kind and flagged.size:
            found.append(int(flagged[0] - window[0]))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--series", type=int, default=2000, help="series (default 2000)")
    parser.add_argument(
        "--tuning", action="store_true", help="use the tuning seeds instead of the evaluation ones"
    )
    parser.add_argument(
        "--without-holidays",
        action="store_true",
        help="give the production method no holiday calendar",
    )
    args = parser.parse_args()
    first_seed = TUNING_SEED if args.tuning else EVALUATION_SEED
    seeds = range(first_seed, first_seed + max(args.series // SERIES_PER_SEED, 1))

    started = time.perf_counter()
    sets = [generate(seed, SERIES_PER_SEED) for seed in seeds]
    generated = time.perf_counter()
    production = [production_flags(data, not args.without_holidays) for data in sets]
    judged = time.perf_counter()
    elementary = [elementary_flags(data.values) for data in sets]
    finished = time.perf_counter()

    def total(flag_sets: list[np.ndarray]) -> dict[str, tuple[int, int]]:
        sums: dict[str, tuple[int, int]] = {}
        for data, flags in zip(sets, flag_sets, strict=True):
            for name, (hits, count) in score(data, flags).items():
                old = sums.get(name, (0, 0))
                sums[name] = (old[0] + hits, old[1] + count)
        return sums

    ours, theirs = total(production), total(elementary)
    print(
        f"{len(sets) * SERIES_PER_SEED} synthetic daily series of {DAYS} days, "
        f"{'tuning' if args.tuning else 'evaluation'} seeds {seeds.start}-{seeds.stop - 1}"
        + (", production method without holiday calendar" if args.without_holidays else "")
    )
    print(f"{'':38}{'boussole.anomalies':>24}{'elementary z-score':>24}")
    for name in ours:
        cells = [
            f"{100 * hits / count:.2f}% ({hits}/{count})" if count else "-"
            for hits, count in (ours[name], theirs[name])
        ]
        print(f"{name:38}{cells[0]:>24}{cells[1]:>24}")
    for kind in ("level_shift", "drift"):
        cells = []
        for flag_sets in (production, elementary):
            found = [
                d for data, f in zip(sets, flag_sets, strict=True) for d in delays(data, f, kind)
            ]
            cells.append(f"{np.median(found):.0f}" if found else "-")
        print(
            f"{kind.replace('_', ' ') + ': median days to detect':38}{cells[0]:>24}{cells[1]:>24}"
        )
    print(
        f"time: generating {generated - started:.2f} s, production method "
        f"{judged - generated:.2f} s, z-score {finished - judged:.2f} s"
    )


if __name__ == "__main__":
    main()
