"""Poison records (boussole/poison.py): a record that passes ingestion but fails the dbt build is
named by the failed build (file, record number, id) and quarantined by hand, after which the
next build passes and publishes, with the load manifest's counts still reconciled.

tests/fixtures/landing_small plus one more deals file: deal 7 in EUR and deal 8 in XAU, a
currency with no FX rate (the gate takes it: one record alone cannot tell). Deal 8's
amount_reporting is null, so the not_null test of fct_deals fails the build. Then, on the
warehouse that built, deal 7's amount turns into "1e999" in raw (as a looser gate of an older
version let in), which fct_deals cannot convert to its decimal.

The steps build one warehouse, at one path with one dbt target folder, so that dbt parses the
project once (a new warehouse path is a new profile); a test that reads a step's result reads a
copy taken after that step.
"""

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from boussole.cli import _failure_report
from boussole.dbt_manifest import ensure_manifest
from boussole.ingestion.loader import ensure_ingestion_tables
from boussole.poison import (
    BY_HAND,
    RecordRef,
    UnknownRecord,
    quarantine_records,
    report_lines,
    trace_failed_build,
)
from boussole.publication import publish_marts
from boussole.settings import Settings
from orchestration.quarantine import dbt_build_failure
from tests.conftest import FIXTURES, Workspace, load_landing, make_workspace, run_dbt

PII_KEY = "test-key-for-boussole-tests"
POISON_FILE = "crm/2026-01-08/deals_2.jsonl"
DEALS = [
    {"id": "7", "currency": "EUR", "amount": "250.00"},
    {"id": "8", "currency": "XAU", "amount": "900.00"},
]
# fct_deals and what it reads, without the tests of other models on it.
FCT_DEALS = ("--select", "+fct_deals", "--indirect-selection", "cautious")
# Every incremental model of the project reads the web events (README, "Incremental").
WEB_INCREMENTAL_MODELS = [
    "marts.fct_page_views",
    "marts.fct_web_page_days",
    "marts.fct_web_sessions",
    "marts.fct_web_transactions",
    "kpi.int_kpi__web",
    "kpi.int_kpi__web_members",
    "intermediate.int_web__sessions",
    "staging.stg_web__events",
]


def deal_line(deal: dict) -> str:
    return json.dumps(
        {
            "id": deal["id"],
            "properties": {
                "dealname": f"Deal {deal['id']}",
                "amount": deal["amount"],
                "deal_currency_code": deal["currency"],
                "dealstage": "closedwon",
                "pipeline": "default",
                "createdate": "2026-01-06T09:00:00Z",
                "closedate": "2026-01-07T10:00:00Z",
                "hubspot_owner_id": "501",
                "product_line": "Platform",
            },
            "createdAt": "2026-01-06T09:00:00Z",
            "updatedAt": "2026-01-07T10:00:00Z",
            "archived": False,
        }
    )


def record_number_of(landing: Path, deal_id: str) -> int:
    """The line of the deal in the poison file, read from the file itself."""
    lines = (landing / POISON_FILE).read_text().splitlines()
    return next(n for n, line in enumerate(lines, 1) if json.loads(line)["id"] == deal_id)


def failed_nodes(target: Path) -> dict[str, str]:
    results = json.loads((target / "run_results.json").read_text())["results"]
    return {
        r["unique_id"].split(".")[2]: r["status"]
        for r in results
        if r["status"] in ("fail", "error")
    }


def manifest_counts(warehouse: Path) -> list[tuple]:
    """Per loaded file: rows read, loaded, quarantined, and the rows its raw table and the
    quarantine hold for it, counted there."""
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        files = conn.execute(
            "select file_sha256, file_path, source, object, rows_read, rows_loaded, "
            "rows_quarantined from ingestion.load_manifest where status = 'loaded' order by all"
        ).fetchall()
        counted = []
        for sha, path, source, object_name, read, loaded, quarantined in files:
            in_raw = conn.execute(
                f"select count(*) from raw_{source}.{object_name} where _file_sha256 = ?", [sha]
            ).fetchone()[0]
            in_quarantine = conn.execute(
                "select count(*) from ingestion.quarantine where file_sha256 = ?", [sha]
            ).fetchone()[0]
            counted.append((path, read, loaded, quarantined, in_raw, in_quarantine))
    return counted


def assert_reconciled(warehouse: Path) -> None:
    for path, read, loaded, quarantined, in_raw, in_quarantine in manifest_counts(warehouse):
        assert (read, loaded, quarantined) == (loaded + quarantined, in_raw, in_quarantine), path


@dataclass(frozen=True)
class Scenario:
    landing: Path
    workspace: Workspace  # its build warehouse is the one every step builds
    target: Path  # dbt's artifacts of the last build

    @property
    def warehouse(self) -> Path:
        return self.workspace.data / "build" / "warehouse.duckdb"

    def build(self, *selection: str):
        """dbt build of the project (or `selection`), as of today: what fails here does not
        depend on the as-of date."""
        return run_dbt(
            "build",
            *(selection or ("--exclude", "resource_type:unit_test")),
            warehouse=self.warehouse,
            target=self.target,
            pii_key=PII_KEY,
        )

    def snapshot(self, name: str) -> Path:
        """A copy of the warehouse and of the last build's results, as they are now."""
        copy = self.landing.parent / name
        copy.mkdir()
        shutil.copy(self.warehouse, copy / "warehouse.duckdb")
        for artifact in ("run_results.json", "manifest.json"):
            shutil.copy(self.target / artifact, copy / artifact)
        return copy


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    root = tmp_path_factory.mktemp("poison")
    # Named as the fixture, whose plausible-date window load_landing applies.
    landing = root / "landing_small"
    shutil.copytree(FIXTURES / "landing_small", landing)
    # load_landing wants every file loaded; how an empty file is recorded is not this test's
    # business.
    for path in landing.rglob("*"):
        if path.is_file() and path.stat().st_size == 0:
            path.unlink()
    (landing / POISON_FILE).write_text("".join(deal_line(d) + "\n" for d in DEALS))
    workspace = make_workspace(root)
    scenario = Scenario(landing, workspace, workspace.data / "target")
    load_landing(scenario.warehouse, landing)
    return scenario


@pytest.fixture(scope="module")
def failed_build(scenario: Scenario) -> Path:
    """The warehouse with the poison deal loaded, and the results of the build it failed."""
    built = scenario.build()
    assert built.returncode == 1, built.stdout[-3000:]
    return scenario.snapshot("failed")


def test_the_failed_test_names_the_record(scenario: Scenario, failed_build: Path) -> None:
    assert failed_nodes(failed_build) == {"not_null_fct_deals_amount_reporting": "fail"}
    suspects = trace_failed_build(failed_build / "warehouse.duckdb", failed_build)
    number = record_number_of(scenario.landing, "8")
    assert [
        (s.file_path, s.record_number, s.raw_table, s.record_id, s.node, s.detail, s.field)
        for s in suspects
    ] == [
        (
            POISON_FILE,
            number,
            "raw_crm.deals",
            "8",
            "test not_null_fct_deals_amount_reporting",
            "fails on its row of fct_deals (deal_id 8)",
            None,
        )
    ]
    assert report_lines(suspects)[-1].endswith(
        f"boussole quarantine {POISON_FILE}:{number} "
        "--reason 'fails test not_null_fct_deals_amount_reporting'"
    )


def test_the_run_summary_names_the_record(scenario: Scenario, failed_build: Path) -> None:
    """What `boussole run` prints when its dbt step fails so (the step's Failure, read back
    from the run's events), without a whole pipeline run."""

    @dg.op
    def dbt_models(context: dg.OpExecutionContext) -> None:
        raise dbt_build_failure(
            context, "dbt build failed: 1 error", failed_build / "warehouse.duckdb", failed_build
        )

    @dg.job
    def pipeline() -> None:
        dbt_models()

    result = pipeline.execute_in_process(raise_on_error=False)
    reference = f"{POISON_FILE}:{record_number_of(scenario.landing, '8')}"
    assert _failure_report(result) == [
        "step dbt_models failed: dagster._core.definitions.events.Failure: dbt build failed: "
        "1 error",
        f"record {reference} (raw_crm.deals id 8): test not_null_fct_deals_amount_reporting "
        "fails on its row of fct_deals (deal_id 8)",
        "if that is bad data, quarantine it (README, 'When a run fails because of a record'), "
        f"then run again: boussole quarantine {reference} "
        "--reason 'fails test not_null_fct_deals_amount_reporting'",
    ]


def project_manifest() -> dict:
    return json.loads(ensure_manifest(Settings.from_env()).read_text())


@pytest.fixture(scope="module")
def quarantined(scenario: Scenario, failed_build: Path) -> Path:
    """The poison deal quarantined, and the warehouse built again (a copy)."""
    with duckdb.connect(str(scenario.warehouse)) as conn:
        done, dropped = quarantine_records(
            conn,
            [RecordRef(POISON_FILE, record_number_of(scenario.landing, "8"))],
            "no XAU rate",
            project_manifest(),
        )
    assert [(str(q.record), q.record_id, q.already) for q in done] == [
        (f"{POISON_FILE}:2", "8", False)
    ]
    assert dropped == []  # CRM models are all rebuilt by each build
    built = scenario.build()
    assert built.returncode == 0, built.stdout[-3000:]
    return scenario.snapshot("quarantined") / "warehouse.duckdb"


def test_the_quarantined_record_leaves_raw_and_the_counts_reconcile(quarantined: Path) -> None:
    with duckdb.connect(str(quarantined), read_only=True) as conn:
        rows = conn.execute(
            "select file_path, record_number, source, object, field, reason, "
            "raw_text::json ->> '$.properties.deal_currency_code' from ingestion.quarantine "
            "where file_path = ?",
            [POISON_FILE],
        ).fetchall()
        left = conn.execute(
            "select record ->> '$.id' from raw_crm.deals where _source_file = ?", [POISON_FILE]
        ).fetchall()
    assert rows == [(POISON_FILE, 2, "crm", "deals", None, BY_HAND + "no XAU rate", "XAU")]
    assert left == [("7",)]
    counts = {path: counted for path, *counted in manifest_counts(quarantined)}
    assert counts[POISON_FILE] == [2, 1, 1, 1, 1]
    assert_reconciled(quarantined)


def test_the_next_build_publishes_without_the_record(quarantined: Path) -> None:
    published = publish_marts(quarantined, quarantined.parent / "published.duckdb").path
    with duckdb.connect(str(published), read_only=True) as conn:
        deals = conn.execute(
            "select deal_id, amount_reporting from fct_deals where deal_id in ('7', '8')"
        ).fetchall()
    assert deals == [("7", 250)]


def test_quarantine_again_or_an_unknown_record(quarantined: Path) -> None:
    manifest = project_manifest()
    before = manifest_counts(quarantined)
    with duckdb.connect(str(quarantined)) as conn:
        done, _ = quarantine_records(conn, [RecordRef(POISON_FILE, 2)], "again", manifest)
        assert [(q.already, q.rows_loaded, q.rows_quarantined) for q in done] == [(True, 1, 1)]
        # One unknown record: nothing changes, not even for the known one beside it.
        with pytest.raises(UnknownRecord, match=re.escape(f"{POISON_FILE}:3: no record 3")):
            quarantine_records(
                conn, [RecordRef(POISON_FILE, 1), RecordRef(POISON_FILE, 3)], "x", manifest
            )
        with pytest.raises(UnknownRecord, match=re.escape("nothing.jsonl is not a loaded file")):
            quarantine_records(conn, [RecordRef("crm/2026-01-08/nothing.jsonl", 1)], "x", manifest)
    assert manifest_counts(quarantined) == before


@pytest.fixture(scope="module")
def unconvertible(scenario: Scenario, quarantined: Path) -> Path:
    """Deal 7's amount turned into "1e999" in raw, and the failed build of fct_deals and what
    it reads (a copy)."""
    with duckdb.connect(str(scenario.warehouse)) as conn:
        conn.execute(
            "update raw_crm.deals set record = json_merge_patch(record, "
            """'{"properties": {"amount": "1e999"}}') where _source_file = ?""",
            [POISON_FILE],
        )
    built = scenario.build(*FCT_DEALS)
    assert built.returncode == 1, built.stdout[-3000:]
    return scenario.snapshot("unconvertible")


def test_a_value_that_cannot_be_converted_names_the_record_and_field(
    scenario: Scenario, unconvertible: Path
) -> None:
    assert failed_nodes(unconvertible) == {"fct_deals": "error"}
    suspects = trace_failed_build(unconvertible / "warehouse.duckdb", unconvertible)
    number = record_number_of(scenario.landing, "7")
    assert [
        (s.file_path, s.record_number, s.raw_table, s.record_id, s.node, s.field) for s in suspects
    ] == [(POISON_FILE, number, "raw_crm.deals", "7", "model fct_deals", "properties.amount")]
    assert suspects[0].detail.startswith("cannot convert its value '1e999' (Conversion Error:")
    assert report_lines(suspects)[-1].endswith(
        f"boussole quarantine {POISON_FILE}:{number} --reason 'fails model fct_deals' "
        "--field properties.amount"
    )


def test_quarantine_by_the_command(scenario: Scenario, unconvertible: Path) -> None:
    """`boussole quarantine` as a user runs it (a Dagster run in the warehouse pool), on the
    record the failed build named; the same build then passes."""
    number = record_number_of(scenario.landing, "7")
    done = scenario.workspace.boussole(
        *("quarantine", f"{POISON_FILE}:{number}"),
        *("--reason", "amount 1e999", "--field", "properties.amount"),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[0] == (
        f"Quarantined: {POISON_FILE}:{number} (raw_crm.deals id 7); "
        f"{POISON_FILE}: read 2 = loaded 0 + quarantined 2"
    )
    with duckdb.connect(str(scenario.warehouse), read_only=True) as conn:
        rows = conn.execute(
            "select record_number, field, reason from ingestion.quarantine "
            "where file_path = ? order by record_number",
            [POISON_FILE],
        ).fetchall()
    assert rows == [
        (1, "properties.amount", BY_HAND + "amount 1e999"),
        (2, None, BY_HAND + "no XAU rate"),
    ]
    assert_reconciled(scenario.warehouse)
    built = scenario.build(*FCT_DEALS)
    assert built.returncode == 0, built.stdout[-3000:]


def test_a_web_event_leaves_the_incremental_models(scenario: Scenario, quarantined: Path) -> None:
    """Quarantining a record of an object incremental models read drops them; the next build
    makes them again from raw, without the record."""
    event = RecordRef("web/2026-01-05/events.jsonl", 2)
    with duckdb.connect(str(scenario.warehouse)) as conn:
        staged = conn.execute(
            "select _record_number from staging.stg_web__events where _source_file = ? "
            "order by all",
            [event.file_path],
        ).fetchall()
        assert (event.record_number,) in staged
        _, dropped = quarantine_records(conn, [event], "bot traffic", project_manifest())
    assert sorted(dropped) == sorted(WEB_INCREMENTAL_MODELS)
    built = scenario.build("--select", "stg_web__events")
    assert built.returncode == 0, built.stdout[-3000:]
    with duckdb.connect(str(scenario.warehouse), read_only=True) as conn:
        restaged = conn.execute(
            "select _record_number from staging.stg_web__events where _source_file = ? "
            "order by all",
            [event.file_path],
        ).fetchall()
    assert restaged == [row for row in staged if row != (event.record_number,)]
    assert_reconciled(scenario.warehouse)


def test_a_failed_uniqueness_test_names_the_records_of_each_source(tmp_path: Path) -> None:
    """Driven by dbt's artifacts alone: a fact that unions two staging models, a `unique` test
    whose rows rename the column (unique_field), and a duplicate id delivered by both sources.
    Hand-made artifacts in dbt's format, on a warehouse without dbt: no build needed."""
    warehouse = tmp_path / "warehouse.duckdb"
    files = {"calls": "crm/2026-01-05/calls.jsonl", "emails": "crm/2026-01-05/emails.jsonl"}
    ids = {"calls": ["c1", "x", "c2"], "emails": ["x", "e1"]}
    with duckdb.connect(str(warehouse)) as conn:
        ensure_ingestion_tables(conn)
        conn.execute("create schema staging; create schema marts")
        for name, path in files.items():
            conn.execute(
                "insert into ingestion.load_manifest (file_path, file_sha256, source, object, "
                "extract_date, file_format, status, rows_read, rows_loaded) "
                "values (?, ?, 'crm', ?, '2026-01-05', 'jsonl', 'loaded', ?, ?)",
                [path, name, name, len(ids[name]), len(ids[name])],
            )
            for number, record_id in enumerate(ids[name], 1):
                conn.execute(
                    f"insert into raw_crm.{name} values (?, '2026-01-05', ?, ?, ?)",
                    [json.dumps({"id": record_id}), path, number, name],
                )
            conn.execute(
                f"create table staging.stg_{name} as select record ->> '$.id' as activity_id, "
                f"_source_file, _record_number from raw_crm.{name}"
            )
        conn.execute(
            "create table marts.fct_activities as select activity_id from staging.stg_calls "
            "union all select activity_id from staging.stg_emails"
        )

    def model(name: str, schema: str, parents: list[str], key: list[str]) -> dict:
        return {
            "unique_id": f"model.boussole.{name}",
            "resource_type": "model",
            "name": name,
            "schema": schema,
            "alias": name,
            "primary_key": key,
            "depends_on": {"nodes": parents},
        }

    test_id = "test.boussole.unique_fct_activities_activity_id.1"
    manifest = {
        "nodes": {
            "model.boussole.stg_calls": model("stg_calls", "staging", [], ["activity_id"]),
            "model.boussole.stg_emails": model("stg_emails", "staging", [], ["activity_id"]),
            "model.boussole.fct_activities": model(
                "fct_activities",
                "marts",
                ["model.boussole.stg_calls", "model.boussole.stg_emails"],
                ["activity_id"],
            ),
            test_id: {
                "unique_id": test_id,
                "resource_type": "test",
                "name": "unique_fct_activities_activity_id",
                "attached_node": "model.boussole.fct_activities",
                "column_name": "activity_id",
                "config": {"where": None},
                "depends_on": {"nodes": ["model.boussole.fct_activities"]},
            },
        },
        "sources": {},
    }
    # dbt's own unique test, compiled.
    compiled = (
        "select activity_id as unique_field, count(*) as n_records from marts.fct_activities "
        "where activity_id is not null group by activity_id having count(*) > 1"
    )
    results = [
        {
            "unique_id": test_id,
            "status": "fail",
            "message": "Got 1 result, configured to fail if != 0",
            "compiled_code": compiled,
        }
    ]
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    (tmp_path / "run_results.json").write_text(json.dumps({"results": results}))
    suspects = trace_failed_build(warehouse, tmp_path)
    assert [(str(s.record), s.raw_table, s.record_id, s.detail) for s in suspects] == [
        (
            f"{files['calls']}:2",
            "raw_crm.calls",
            "x",
            "fails on its row of fct_activities (activity_id x)",
        ),
        (
            f"{files['emails']}:1",
            "raw_crm.emails",
            "x",
            "fails on its row of fct_activities (activity_id x)",
        ),
    ]
