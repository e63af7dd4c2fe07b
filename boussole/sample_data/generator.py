"""Orchestrates the sources: simulate CRM, support and spend up front (small), then write one
extract day at a time, generating the (large) web events day by day."""

from __future__ import annotations

import gc
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from datetime import date, timedelta
from pathlib import Path

from . import crm, spend, support
from ._common import LandingWriter, ParisCalendar, days_between
from .faults import FAULTS, apply_faults
from .marker import mark_sample
from .web import WebSimulator

# Simulated events (deal closes, auto-closes) run past the last extract; the calendar covers them.
_HORIZON_DAYS = 400


@dataclass(frozen=True)
class SampleScale:
    """Row-count knobs; the defaults give a small demo (the whole generation takes seconds)."""

    web_events_per_day: int = 400  # average; varies with weekday, month and growth
    deals_per_day: float = 3.0
    contacts_per_day: float = 12.0
    tickets_per_day: float = 8.0
    companies: int = 60
    owners: int = 8


@dataclass
class GenerationSummary:
    files_written: int
    rows_by_object: dict[str, int] = field(default_factory=dict)  # "source/object" -> rows
    extract_dates: list[date] = field(default_factory=list)


def _check(start: date, end: date, scale: SampleScale, faults: frozenset[str]) -> None:
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    unknown = set(faults) - FAULTS
    if unknown:
        raise ValueError(f"unknown faults {sorted(unknown)}; known: {sorted(FAULTS)}")
    negative = [f.name for f in fields(scale) if getattr(scale, f.name) < 0]
    if negative:
        raise ValueError(f"negative scale values: {negative}")


def generate(
    landing_dir: Path,
    *,
    seed: int = 42,
    start: date = date(2026, 1, 1),
    end: date = date(2026, 3, 31),
    scale: SampleScale = SampleScale(),  # frozen, so safe as a default
    faults: frozenset[str] = frozenset(),
    progress: Callable[[int, int], None] | None = None,
) -> GenerationSummary:
    """Write vendor-shaped extracts for every day from start to end into landing_dir.

    Deterministic: the same arguments give byte-identical files. Each source draws from its
    own random stream, so changing one knob (say web volume) leaves the other sources as
    they were. `faults` adds bad inputs to the first extract day (see FAULTS).
    """
    faults = frozenset(faults)
    _check(start, end, scale, faults)
    with _collector_paused():
        return _generate(Path(landing_dir), seed, start, end, scale, faults, progress)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Generation builds millions of long-lived, cycle-free objects (record histories, the
    visitor pool): the cyclic garbage collector would rescan them over and over (15-20% of
    the run time) without ever finding garbage."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _generate(
    landing_dir: Path,
    seed: int,
    start: date,
    end: date,
    scale: SampleScale,
    faults: frozenset[str],
    progress: Callable[[int, int], None] | None,
) -> GenerationSummary:
    warmup_start = start - timedelta(days=max(crm.WARMUP_DAYS, support.WARMUP_DAYS))
    cal = ParisCalendar(warmup_start, end + timedelta(days=_HORIZON_DAYS))
    fx = spend.simulate_fx(random.Random(f"{seed}/fx"), warmup_start, end)
    crm_data = crm.simulate(random.Random(f"{seed}/crm"), cal, scale, start, end)
    support_data = support.simulate(
        random.Random(f"{seed}/support"),
        cal,
        scale,
        start,
        end,
        crm_data.customers,
        crm_data.companies,
    )
    spend_data = spend.simulate(
        random.Random(f"{seed}/spend"),
        cal,
        start,
        end,
        fx,
        crm_data.won_deals,
        crm_data.team_headcount,
    )
    web = WebSimulator(
        random.Random(f"{seed}/web"),
        cal,
        scale.web_events_per_day,
        start,
        crm_data.leads_by_day,
        fx,
    )

    writer = LandingWriter(landing_dir)
    days = days_between(start, end)
    for done, day in enumerate(days, start=1):
        if day == start:
            writer.write_document("crm", day, "pipelines", crm_data.pipelines)
        for obj, by_day in crm_data.files.items():
            writer.write_lines("crm", day, obj, by_day.get(day, []))
        writer.write_lines("web", day, "events", web.events_for(day, last_day=day == end))
        for obj, by_day in support_data.files.items():
            writer.write_lines("support", day, obj, by_day.get(day, []))
        writer.write_csv(
            "spend",
            day,
            "marketing_spend",
            spend.MARKETING_HEADER,
            spend_data.marketing_spend.get(day, []),
        )
        writer.write_csv(
            "spend",
            day,
            "sales_costs",
            spend.SALES_COSTS_HEADER,
            spend_data.sales_costs.get(day, []),
        )
        writer.write_csv("spend", day, "fx_rates", spend.FX_HEADER, spend_data.fx_rates[day])
        if day == start and faults:
            apply_faults(writer, day, faults)
        if progress is not None:
            progress(done, len(days))
    mark_sample(landing_dir, writer.files)
    return GenerationSummary(
        files_written=len(writer.files),
        rows_by_object=dict(sorted(writer.rows.items())),
        extract_dates=days,
    )
