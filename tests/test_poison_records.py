"""Poison records (boussole/poison.py): a record that passes ingestion but fails the dbt build is
named by the failed build (file, record number, id) and quarantined by hand, after which the
next build passes and publishes, with the load manifest's counts still reconciled.

tests/fixtures/landing_small plus one more deals file: deal 7 in EUR and deal 8 in XAU, a
currency with no FX rate (the gate takes it: one record alone cannot tell). Deal 8's
amount_reporting is null, so the not_null test of fct_deals fails the build. Then, on the
warehouse that built, deal 7's amount turns into "1e999" in raw (as a looser gate of an older
version let in), which fct_deals cannot convert to its decimal.
"""

import json
import re
import shutil
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from boussole.cli import _failure_report
from boussole.dbt_manifest import ensure_manifest
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
from tests.conftest import FIXTURES, load_landing, make_workspace, run_dbt

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
    "intermediate.int_kpi__web",
    "intermediate.int_kpi__web_members",
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


def build(warehouse: Path, target: Path, *selection: str):
    """dbt build of the project (or `selection`), as of today: what fails here does not
    depend on the as-of date."""
    return run_dbt(
        "build",
        *(selection or ("--exclude", "resource_type:unit_test")),
        warehouse=warehouse,
        target=target,
        pii_key=PII_KEY,
    )


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


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Named as the fixture, whose plausible-date window load_landing applies.
    landing = tmp_path_factory.mktemp("poison") / "landing_small"
    shutil.copytree(FIXTURES / "landing_small", landing)
    # load_landing wants every file loaded; how an empty file is recorded is not this test's
    # business.
    for path in landing.rglob("*"):
        if path.is_file() and path.stat().st_size == 0:
            path.unlink()
    (landing / POISON_FILE).write_text("".join(deal_line(d) + "\n" for d in DEALS))
    return landing


@pytest.fixture(scope="module")
def failed_build(landing: Path) -> tuple[Path, Path]:
    """The warehouse with the poison deal loaded, and the folder of the dbt build it failed."""
    root = landing.parent
    warehouse = root / "build" / "warehouse.duckdb"
    load_landing(warehouse, landing)
    built = build(warehouse, root / "failed")
    assert built.returncode == 1, built.stdout[-3000:]
    return warehouse, root / "failed"


def test_the_failed_test_names_the_record(landing: Path, failed_build: tuple[Path, Path]) -> None:
    warehouse, target = failed_build
    assert failed_nodes(target) == {"not_null_fct_deals_amount_reporting": "fail"}
    suspects = trace_failed_build(warehouse, target)
    number = record_number_of(landing, "8")
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


def test_the_run_summary_names_the_record(landing: Path, failed_build: tuple[Path, Path]) -> None:
    """What `boussole run` prints when its dbt step fails so (the step's Failure, read back
    from the run's events), without a whole pipeline run."""
    warehouse, target = failed_build

    @dg.op
    def dbt_models(context: dg.OpExecutionContext) -> None:
        raise dbt_build_failure(context, "dbt build failed: 1 error", warehouse, target)

    @dg.job
    def pipeline() -> None:
        dbt_models()

    result = pipeline.execute_in_process(raise_on_error=False)
    reference = f"{POISON_FILE}:{record_number_of(landing, '8')}"
    assert _failure_report(result) == [
        "step dbt_models failed: dagster._core.definitions.events.Failure: dbt build failed: "
        "1 error",
        f"record {reference} (raw_crm.deals id 8): test not_null_fct_deals_amount_reporting "
        "fails on its row of fct_deals (deal_id 8)",
        "if that is bad data, quarantine it (README, 'When a run fails because of a record'), "
        f"then run again: boussole quarantine {reference} "
        "--reason 'fails test not_null_fct_deals_amount_reporting'",
    ]


@pytest.fixture(scope="module")
def quarantined(landing: Path, failed_build: tuple[Path, Path]) -> Path:
    """A copy of the failed build's warehouse, the poison deal quarantined, built again."""
    warehouse = landing.parent / "quarantined" / "warehouse.duckdb"
    warehouse.parent.mkdir()
    shutil.copy(failed_build[0], warehouse)
    manifest = json.loads(ensure_manifest(Settings.from_env()).read_text())
    with duckdb.connect(str(warehouse)) as conn:
        done, dropped = quarantine_records(
            conn, [RecordRef(POISON_FILE, record_number_of(landing, "8"))], "no XAU rate", manifest
        )
    assert [(str(q.record), q.record_id, q.already) for q in done] == [
        (f"{POISON_FILE}:2", "8", False)
    ]
    assert dropped == []  # CRM models are all rebuilt by each build
    built = build(warehouse, warehouse.parent / "target")
    assert built.returncode == 0, built.stdout[-3000:]
    return warehouse


def test_the_quarantined_record_leaves_raw_and_the_counts_reconcile(
    landing: Path, quarantined: Path
) -> None:
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


def test_quarantine_again_or_an_unknown_record(landing: Path, quarantined: Path) -> None:
    manifest = json.loads(ensure_manifest(Settings.from_env()).read_text())
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
def unconvertible(landing: Path, quarantined: Path) -> tuple[Path, Path]:
    """A copy of the built warehouse where deal 7's amount became "1e999" in raw, and the
    failed build of fct_deals and what it reads."""
    warehouse = landing.parent / "unconvertible" / "warehouse.duckdb"
    warehouse.parent.mkdir()
    shutil.copy(quarantined, warehouse)
    with duckdb.connect(str(warehouse)) as conn:
        conn.execute(
            "update raw_crm.deals set record = json_merge_patch(record, "
            """'{"properties": {"amount": "1e999"}}') where _source_file = ?""",
            [POISON_FILE],
        )
    built = build(warehouse, warehouse.parent / "failed", *FCT_DEALS)
    assert built.returncode == 1, built.stdout[-3000:]
    return warehouse, warehouse.parent / "failed"


def test_a_value_that_cannot_be_converted_names_the_record_and_field(
    landing: Path, unconvertible: tuple[Path, Path]
) -> None:
    warehouse, target = unconvertible
    assert failed_nodes(target) == {"fct_deals": "error"}
    suspects = trace_failed_build(warehouse, target)
    assert [
        (s.file_path, s.record_number, s.raw_table, s.record_id, s.node, s.field) for s in suspects
    ] == [
        (
            POISON_FILE,
            record_number_of(landing, "7"),
            "raw_crm.deals",
            "7",
            "model fct_deals",
            "properties.amount",
        )
    ]
    assert suspects[0].detail.startswith("cannot convert its value '1e999' (Conversion Error:")
    assert report_lines(suspects)[-1].endswith(
        f"boussole quarantine {POISON_FILE}:1 --reason 'fails model fct_deals' "
        "--field properties.amount"
    )


def test_quarantine_by_the_command(
    landing: Path, unconvertible: tuple[Path, Path], tmp_path: Path
) -> None:
    """`boussole quarantine` as a user runs it (a Dagster run in the warehouse pool), on the
    record the failed build named; the same build then passes."""
    warehouse, _ = unconvertible
    workspace = make_workspace(tmp_path)
    (workspace.data / "build").mkdir(parents=True)
    shutil.copy(warehouse, workspace.data / "build" / "warehouse.duckdb")
    done = workspace.boussole(
        "quarantine", f"{POISON_FILE}:1", "--reason", "amount 1e999", "--field", "properties.amount"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[0] == (
        f"Quarantined: {POISON_FILE}:1 (raw_crm.deals id 7); "
        f"{POISON_FILE}: read 2 = loaded 0 + quarantined 2"
    )
    moved = workspace.data / "build" / "warehouse.duckdb"
    with duckdb.connect(str(moved), read_only=True) as conn:
        rows = conn.execute(
            "select record_number, field, reason from ingestion.quarantine "
            "where file_path = ? order by record_number",
            [POISON_FILE],
        ).fetchall()
    assert rows == [
        (1, "properties.amount", BY_HAND + "amount 1e999"),
        (2, None, BY_HAND + "no XAU rate"),
    ]
    assert_reconciled(moved)
    built = build(moved, workspace.data / "target", *FCT_DEALS)
    assert built.returncode == 0, built.stdout[-3000:]


def test_a_web_event_leaves_the_incremental_models(landing: Path, quarantined: Path) -> None:
    """Quarantining a record of an object incremental models read drops them; the next build
    makes them again from raw, without the record."""
    warehouse = landing.parent / "web" / "warehouse.duckdb"
    warehouse.parent.mkdir()
    shutil.copy(quarantined, warehouse)
    event = RecordRef("web/2026-01-05/events.jsonl", 2)
    manifest = json.loads(ensure_manifest(Settings.from_env()).read_text())
    with duckdb.connect(str(warehouse)) as conn:
        staged = conn.execute(
            "select _record_number from staging.stg_web__events where _source_file = ? "
            "order by all",
            [event.file_path],
        ).fetchall()
        assert (event.record_number,) in staged
        _, dropped = quarantine_records(conn, [event], "bot traffic", manifest)
    assert sorted(dropped) == sorted(WEB_INCREMENTAL_MODELS)
    built = build(warehouse, warehouse.parent / "target", "--select", "stg_web__events")
    assert built.returncode == 0, built.stdout[-3000:]
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        restaged = conn.execute(
            "select _record_number from staging.stg_web__events where _source_file = ? "
            "order by all",
            [event.file_path],
        ).fetchall()
    assert restaged == [row for row in staged if row != (event.record_number,)]
    assert_reconciled(warehouse)
