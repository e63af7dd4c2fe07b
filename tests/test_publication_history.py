"""The publication history, as-of values, restatements and their policy, on hand-made build
warehouses (kpi_values and kpi_catalogue written by hand, no dbt): each publication goes
through publish_marts with a Recording, as the published_mart asset does."""

import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from boussole.history import Recording
from boussole.publication import publish_marts
from boussole.restatements import RestatementsRefused, accept_refused

pytestmark = pytest.mark.apart

# kpi_id: (unit, tier, tolerance as the catalogue's defaults give it, additive)
CATALOGUE = {
    "revenue": ("currency", "key", 0.0001, True),
    "deals_won": ("count", "key", 0.0, True),
    "win_rate": ("ratio", "supporting", 0.001, False),
}
JANUARY, FEBRUARY = date(2026, 1, 1), date(2026, 2, 1)
MONTH_END = {JANUARY: date(2026, 1, 31), FEBRUARY: date(2026, 2, 28)}


class Publisher:
    """Publishes hand-made kpi_values into one data folder, one extract day after another."""

    def __init__(self, root: Path, refuse_key_restatements: bool = False):
        self.root = root
        self.build = root / "build" / "warehouse.duckdb"
        self.published = root / "published" / "boussole.duckdb"
        self.history = root / "history" / "publications.duckdb"
        self.refuse = refuse_key_restatements

    def publish(self, as_of: date, values: dict[tuple[str, date], float]):
        """values {(kpi, month): value} as of `as_of`, published at 07:00 UTC that day."""
        self.build.parent.mkdir(parents=True, exist_ok=True)
        self.build.unlink(missing_ok=True)
        with duckdb.connect(str(self.build)) as conn:
            conn.execute("create schema marts; create schema ingestion")
            conn.execute(
                "create table ingestion.load_manifest as select 'crm/x.jsonl' as file_path, "
                "'loaded' as status, ?::date as extract_date, now() as loaded_at",
                [as_of],
            )
            conn.execute(
                "create table marts.kpi_catalogue (kpi_id varchar, unit varchar, tier varchar, "
                "restatement_tolerance double, is_additive boolean)"
            )
            conn.executemany(
                "insert into marts.kpi_catalogue values (?, ?, ?, ?, ?)",
                [(kpi, *entry) for kpi, entry in CATALOGUE.items()],
            )
            conn.execute(
                "create table marts.kpi_values (kpi_id varchar, grain varchar, "
                "period_start date, period_end date, dimension varchar, dimension_value varchar, "
                "value double, is_complete_period boolean)"
            )
            conn.executemany(
                "insert into marts.kpi_values values (?, 'month', ?, ?, 'all', 'all', ?, ?)",
                [
                    (kpi, start, MONTH_END[start], value, MONTH_END[start] < as_of)
                    for (kpi, start), value in values.items()
                ],
            )
        at = datetime.combine(as_of, datetime.min.time(), UTC) + timedelta(hours=7)
        recording = Recording(self.history, f"run-{as_of}", self.refuse, at)
        return publish_marts(self.build, self.published, recording)

    def query(self, sql: str, params=()) -> list[tuple]:
        with duckdb.connect(str(self.published), read_only=True) as conn:
            return conn.execute(sql, params).fetchall()

    def history_rows(self, sql: str, params=()) -> list[tuple]:
        with duckdb.connect(str(self.history), read_only=True) as conn:
            return conn.execute(sql, params).fetchall()


def test_a_figure_unchanged_across_ten_daily_publications_is_recorded_once(tmp_path):
    """January's revenue stays 1,000 over ten daily publications while February's, in
    progress, grows each day: one history row for January (its first publication), ten for
    February, no restatement."""
    publisher = Publisher(tmp_path)
    for day in range(10):
        publisher.publish(
            date(2026, 2, 2) + timedelta(days=day),
            {("revenue", JANUARY): 1000.0, ("revenue", FEBRUARY): 100.0 * (day + 1)},
        )

    assert publisher.history_rows(
        "select period_start, count(*) from kpi_value_changes group by all order by all"
    ) == [(JANUARY, 1), (FEBRUARY, 10)]
    assert publisher.history_rows("select count(*), sum(restatements) from publications") == [
        (10, 0)
    ]
    assert publisher.query("select count(*) from kpi_restatements") == [(0,)]


def test_a_change_beyond_the_tolerance_of_its_unit_is_a_restatement(tmp_path):
    """Money moves by 0.01 %, counts exactly, ratios by 0.1 %; a period in progress at the
    previous publication is never restated; the tolerance is measured from the value last
    published."""
    publisher = Publisher(tmp_path)
    publisher.publish(
        date(2026, 2, 2),
        {
            ("revenue", JANUARY): 1_000_000.0,
            ("deals_won", JANUARY): 10.0,
            ("win_rate", JANUARY): 0.5,
            ("revenue", FEBRUARY): 10.0,
        },
    )
    second = publisher.publish(
        date(2026, 2, 3),
        {
            ("revenue", JANUARY): 1_000_050.0,  # 0.005 %: within 0.01 %
            ("deals_won", JANUARY): 11.0,  # a count: restated
            ("win_rate", JANUARY): 0.5004,  # 0.08 %: within 0.1 %
            ("revenue", FEBRUARY): 500.0,  # in progress
        },
    )
    third = publisher.publish(
        date(2026, 2, 4),
        {
            ("revenue", JANUARY): 1_000_200.0,  # 0.015 % from 1,000,050: restated
            ("deals_won", JANUARY): 11.0,
            ("win_rate", JANUARY): 0.5,  # 0.08 % back
            ("revenue", FEBRUARY): 900.0,
        },
    )

    assert (second.restatements, third.restatements) == (1, 1)
    assert publisher.query(
        "select r.kpi_id, r.period_start, r.old_value, r.new_value, r.tolerance, "
        "r.first_published_at, r.old_published_at, p.as_of_date "
        "from kpi_restatements as r join publications as p using (publication_id) "
        "order by p.as_of_date"
    ) == [
        (
            "deals_won",
            JANUARY,
            10.0,
            11.0,
            0.0,
            datetime(2026, 2, 2, 7, tzinfo=UTC),
            datetime(2026, 2, 2, 7, tzinfo=UTC),
            date(2026, 2, 3),
        ),
        (
            "revenue",
            JANUARY,
            1_000_050.0,
            1_000_200.0,
            0.0001,
            datetime(2026, 2, 2, 7, tzinfo=UTC),
            datetime(2026, 2, 3, 7, tzinfo=UTC),
            date(2026, 2, 4),
        ),
    ]


AS_OF_QUERY = """
select value from kpi_value_history
where kpi_id = ? and grain = 'month' and period_start = ?
    and dimension = 'all' and dimension_value = 'all'
    and valid_from <= ? and (valid_to is null or ? < valid_to)
"""


def test_the_value_as_published_on_an_earlier_date_after_a_correction(tmp_path):
    """January's revenue published as 1,000 on 2 February and corrected to 1,200 on
    5 February: as published on the 3rd, 1,000; on the 6th, 1,200 (and in kpi_values)."""
    publisher = Publisher(tmp_path)
    publisher.publish(date(2026, 2, 2), {("revenue", JANUARY): 1000.0})
    publisher.publish(date(2026, 2, 5), {("revenue", JANUARY): 1200.0})

    def as_published_on(day: date) -> list[tuple]:
        end_of_day = datetime.combine(day, datetime.max.time(), UTC)
        return publisher.query(AS_OF_QUERY, ["revenue", JANUARY, end_of_day, end_of_day])

    assert as_published_on(date(2026, 2, 1)) == []  # not published yet
    assert as_published_on(date(2026, 2, 3)) == [(1000.0,)]
    assert as_published_on(date(2026, 2, 6)) == [(1200.0,)]
    assert publisher.query("select value from kpi_values") == [(1200.0,)]


def test_a_publication_served_but_not_recorded_is_recorded_by_the_next_one(tmp_path):
    """A crash between the swap and the history's write: the history is as before the second
    publication, the served mart is the second one. The third records it first, then its own
    changes against it."""
    publisher = Publisher(tmp_path)
    publisher.publish(date(2026, 2, 2), {("revenue", JANUARY): 1000.0})
    kept = tmp_path / "history-after-first.duckdb"
    shutil.copy(publisher.history, kept)
    second = publisher.publish(date(2026, 2, 3), {("revenue", JANUARY): 1200.0})
    shutil.copy(kept, publisher.history)  # the second's record never happened

    third = publisher.publish(date(2026, 2, 4), {("revenue", JANUARY): 1200.0})

    assert third.recorded_late == (second.publication_id,)
    assert publisher.history_rows(
        "select p.as_of_date, c.value, p.restatements from publications as p "
        "left join kpi_value_changes as c using (publication_id) order by all"
    ) == [(date(2026, 2, 2), 1000.0, 0), (date(2026, 2, 3), 1200.0, 1), (date(2026, 2, 4), None, 0)]


def test_a_restatement_of_a_key_kpi_waits_for_acceptance_when_the_policy_says_so(tmp_path):
    """With the policy on, a key KPI's restatement refuses publication (the served mart is
    unchanged) until accepted; a supporting KPI's is published; once accepted, the same change
    is published with who accepted it and why, and another change is refused again."""
    publisher = Publisher(tmp_path, refuse_key_restatements=True)
    publisher.publish(date(2026, 2, 2), {("revenue", JANUARY): 1000.0, ("win_rate", JANUARY): 0.5})
    assert (
        publisher.publish(
            date(2026, 2, 3), {("revenue", JANUARY): 1000.0, ("win_rate", JANUARY): 0.6}
        ).restatements
        == 1
    )

    with pytest.raises(
        RestatementsRefused, match=r"revenue \(month 2026-01-01\): 1000.0 -> 1500.0"
    ):
        publisher.publish(
            date(2026, 2, 4), {("revenue", JANUARY): 1500.0, ("win_rate", JANUARY): 0.6}
        )
    assert publisher.query("select kpi_id, value from kpi_values order by all") == [
        ("revenue", 1000.0),
        ("win_rate", 0.6),
    ]
    assert accept_refused(publisher.history, "deal 1 was mistyped", by="alice") == [
        ("revenue", "month", JANUARY, "all", "all", 1000.0, 1500.0)
    ]
    assert accept_refused(publisher.history, "again", by="bob") == []

    publisher.publish(date(2026, 2, 4), {("revenue", JANUARY): 1500.0, ("win_rate", JANUARY): 0.6})
    assert publisher.query(
        "select kpi_id, old_value, new_value, accepted_by, acceptance_reason "
        "from kpi_restatements order by detected_at"
    ) == [
        ("win_rate", 0.5, 0.6, None, None),
        ("revenue", 1000.0, 1500.0, "alice", "deal 1 was mistyped"),
    ]
    with pytest.raises(RestatementsRefused):
        publisher.publish(date(2026, 2, 5), {("revenue", JANUARY): 1400.0})
