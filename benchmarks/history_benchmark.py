"""What the publication history costs: bytes per daily publication and time per publication.

Drives publish_marts with a Recording (as the published_mart asset does) over `--days` daily
publications of kpi_values built cheaply in SQL, instead of as many pipeline runs: every
series (KPI x slice value) has a row per day, ISO week, month, quarter and year up to the
as-of date; a complete period keeps its value, a period in progress changes every day, and a
few complete values a day are corrected (restatements). The defaults give the sample's shape
(60 KPIs, 20 slice values each: about 130,000 rows after 90 days).

    .venv/bin/python benchmarks/history_benchmark.py [--days 90] [--series 1200]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from boussole.history import Recording
from boussole.publication import publish_marts

FIRST_DAY = date(2026, 1, 1)


def build(warehouse: Path, as_of: date, series: int, corrections: int) -> None:
    warehouse.unlink(missing_ok=True)
    with duckdb.connect(str(warehouse)) as conn:
        conn.execute("create schema marts; create schema ingestion")
        conn.execute(
            "create table ingestion.load_manifest as select 'x' as file_path, "
            "'loaded' as status, ?::date as extract_date, now() as loaded_at",
            [as_of],
        )
        conn.execute(
            "create table marts.kpi_catalogue as select 'kpi_' || k as kpi_id, 'key' as tier, "
            "0.0001 as restatement_tolerance, true as is_additive from range(60) as t(k)"
        )
        conn.execute(
            """
            create table marts.kpi_values as
            with days as (
                select d::date as day from range(?::date, ?::date + 1, interval 1 day) as t(d)
            ),
            periods as (
                select distinct grain, period_start, period_end from days,
                lateral (values
                    ('day', day, day),
                    ('week', date_trunc('week', day)::date,
                        (date_trunc('week', day) + interval 6 day)::date),
                    ('month', date_trunc('month', day)::date, last_day(day)),
                    ('quarter', date_trunc('quarter', day)::date,
                        (date_trunc('quarter', day) + interval 3 month - interval 1 day)::date),
                    ('year', date_trunc('year', day)::date,
                        (date_trunc('year', day) + interval 1 year - interval 1 day)::date)
                ) as p(grain, period_start, period_end)
            )
            select 'kpi_' || (s % 60) as kpi_id, grain, period_start, period_end,
                case when s < 60 then 'all' else 'owner' end as dimension,
                case when s < 60 then 'all' else 'owner_' || (s // 60) end as dimension_value,
                -- a complete value is fixed, but for `corrections` of them corrected that day
                hash(s, grain, period_start) % 100000
                    + case when period_end >= ? then datediff('day', period_start, ?) else 0 end
                    + case when period_end < ? and hash(s, grain, period_start, ?) % ? = 0
                        then 1000 else 0 end as value,
                period_end < ? as is_complete_period
            from periods, range(?) as t(s)
            """,
            [FIRST_DAY, as_of, as_of, as_of, as_of, as_of, 1_000_000 // corrections, as_of, series],
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--series", type=int, default=1200, help="KPIs x slice values")
    parser.add_argument("--corrections", type=int, default=5, help="per million values a day")
    parser.add_argument("--workdir", type=Path, default=Path("benchmarks/output/history"))
    args = parser.parse_args()
    shutil.rmtree(args.workdir, ignore_errors=True)
    warehouse = args.workdir / "build" / "warehouse.duckdb"
    warehouse.parent.mkdir(parents=True)
    published = args.workdir / "published" / "boussole.duckdb"
    history = args.workdir / "history" / "publications.duckdb"
    sizes, seconds, restated = [], [], 0
    for day in range(args.days):
        as_of = FIRST_DAY + timedelta(days=day + 1)
        build(warehouse, as_of, args.series, args.corrections)
        at = datetime.combine(as_of, datetime.min.time(), UTC)
        started = time.perf_counter()
        mart = publish_marts(warehouse, published, Recording(history, f"day-{day}", False, at))
        seconds.append(time.perf_counter() - started)
        restated += mart.restatements
        sizes.append(history.stat().st_size)
    with duckdb.connect(str(history), read_only=True) as conn:
        rows, changes = conn.execute(
            "select max(rows_published), (select count(*) from kpi_value_changes) from publications"
        ).fetchone()
    print(f"{args.days} daily publications, {rows:,} kpi_values rows in the last one")
    print(f"history: {sizes[-1]:,} bytes, {changes:,} changed rows kept, {restated} restatements")
    print(f"bytes per daily publication: {sizes[-1] / args.days:,.0f} on average")
    window = min(30, args.days - 1)
    if window:
        growth = (sizes[-1] - sizes[-1 - window]) / window
        print(f"  growth over the last {window}: {growth:,.0f} bytes a publication")
    print(
        f"  the published mart (kpi_values and the history it carries): "
        f"{published.stat().st_size:,} bytes"
    )
    print(
        f"time per publication (copy, history, restatements, swap, record): "
        f"first {seconds[0]:.2f} s, last {seconds[-1]:.2f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
