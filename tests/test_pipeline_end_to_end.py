"""The whole pipeline through Dagster on a hand-made fixture (tests/fixtures/landing_small).

Expected values are worked out by hand from the fixture files; the reporting time zone is
Europe/Paris (UTC+1 in January and February 2026).
"""

import json
import re
import shutil
import subprocess
from datetime import date, datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest
import yaml

from boussole.audit_scope import forget_publication
from boussole.settings import Settings
from tests.conftest import (
    FIXTURES,
    PROJECT_ROOT,
    all_kpi_rows,
    copy_workspace,
    kpi_series,
    run_dbt,
)

# The run on landing_small is built once per test run (conftest small_pipeline): each test
# reads it or runs on from a copy, wherever a worker is free.
pytestmark = [pytest.mark.e2e, pytest.mark.apart]


# The latest extract date of the fixture: the KPIs are as of that day.
AS_OF = "2026-02-02"


def zero_days(first: str, last: str) -> dict[str, float]:
    """{day: 0.0} for every day from first to last, both included."""
    start, end = date.fromisoformat(first), date.fromisoformat(last)
    return {str(start + timedelta(days=n)): 0.0 for n in range((end - start).days + 1)}


@pytest.fixture(scope="module")
def published_once(small_pipeline):
    return small_pipeline


def test_run_publishes_and_prints_the_mart(published_once):
    workspace, result = published_once
    assert workspace.published.exists()
    assert f"Published mart: {workspace.published}" in result.stdout
    assert "revenue" in result.stdout and "1,660.00" in result.stdout
    # The fixture's empty gzip file of groups cannot be read: reported, the rest still loads.
    assert "Published, with warnings" in result.stdout
    assert "support/2026-01-05/groups.jsonl.gz: the file is empty" in result.stdout
    # dbt's node-by-node log goes to the run's log file, not between the bar and the summary.
    step_output = workspace.data / "logs"
    assert f"Step output (dbt's log and others): {step_output}" in result.stdout
    assert "model kpi.kpi_values" not in result.stdout
    (log_file,) = step_output.glob("*.log")
    assert "model kpi.kpi_values" in log_file.read_text()
    # The progress bar counts the run's eight steps (four ingestions, dbt, GX, the KPIs'
    # anomalies, publication).
    assert "8/8" in result.stderr and "published_mart" in result.stderr


def test_revenue_by_close_date_in_reporting_currency(published_once):
    workspace, _ = published_once
    # Deal 1: 1000 EUR won on 2026-01-05, amended to 1200 by a later version -> 1200.
    # Deal 2: 500 USD closed 2026-01-06T23:30Z = 2026-01-07 00:30 Paris; USD rate of
    #         2026-01-07 is 0.92 -> 500 * 0.92 = 460.
    # Deal 3 is lost, deal 4 open (its older 'won' version delivered late must not win).
    # Deal 5: 400 GBP closed 2026-02-03 (epoch ms); latest GBP rate (2026-01-05) 1.15 -> 460.
    # A sum has a zero row for each day without data, from its first day to the as-of date
    # (the latest extract, support/2026-02-02); deal 5's close date lies beyond it.
    assert kpi_series(workspace.published, "revenue", "day") == {
        **zero_days("2026-01-05", AS_OF),
        "2026-01-05": 1200.0,
        "2026-01-07": 460.0,
        "2026-02-03": 460.0,
    }
    assert kpi_series(workspace.published, "revenue", "month") == {
        "2026-01-01": 1200.0 + 460.0,
        "2026-02-01": 460.0,
    }
    assert kpi_series(workspace.published, "revenue", "month", "product_line", "Services") == {
        "2026-01-01": 460.0
    }


def test_sessions_by_paris_date_of_first_event(published_once):
    workspace, _ = published_once
    # u1/100 and u2/200 (22:59Z = 23:59 Paris) start on 01-05; u1/101 starts 23:30Z =
    # 00:30 Paris on 01-06; u3/300 on 02-10. u2/200's page_view delivered twice counts once.
    assert kpi_series(workspace.published, "sessions", "day") == {
        **zero_days("2026-01-05", AS_OF),
        "2026-01-05": 2.0,
        "2026-01-06": 1.0,
        "2026-02-10": 1.0,
    }
    assert kpi_series(workspace.published, "sessions", "month") == {
        "2026-01-01": 3.0,
        "2026-02-01": 1.0,
    }


def test_first_response_time_is_a_median_per_grain(published_once):
    workspace, _ = published_once
    # Created 01-05 (Paris): tickets 1 (30 min) and 2 (90 min); ticket 5 has no reply yet.
    # Ticket 3 is created 23:30Z = 00:30 Paris on 01-06 (10 min); ticket 4 on 02-02 (45).
    assert kpi_series(workspace.published, "first_response_time_min", "day") == {
        "2026-01-05": (30 + 90) / 2,
        "2026-01-06": 10.0,
        "2026-02-02": 45.0,
    }
    # January median of [10, 30, 90] is 30 (not the mean of daily medians, 35).
    assert kpi_series(workspace.published, "first_response_time_min", "month") == {
        "2026-01-01": 30.0,
        "2026-02-01": 45.0,
    }


def test_the_mart_carries_anomalies_alerts_and_the_trust_of_each_value(published_once):
    workspace, result = published_once
    with duckdb.connect(str(workspace.published), read_only=True) as conn:
        key_kpis = {
            row[0]
            for row in conn.execute(
                "select kpi_id from kpi_catalogue where tier = 'key'"
            ).fetchall()
        }
        judged = conn.execute("select distinct kpi_id, grain from kpi_anomalies").fetchall()
        raised = conn.execute("select kind from alerts").fetchall()
        revenue_january = conn.execute(
            "select is_complete_period, missing_source_days, trust_status, trust_reasons "
            "from kpi_values where kpi_id = 'revenue' and grain = 'month' "
            "and period_start = '2026-01-01' and dimension = 'all'"
        ).fetchone()
        trust = conn.execute(
            "select is_complete_period, trust_status, trust_reasons is null, count(*) "
            "from kpi_values group by all order by all"
        ).fetchall()
    # Only key KPIs, at day and week grain, are judged.
    assert judged and {kpi for kpi, _ in judged} <= key_kpis
    assert {grain for _, grain in judged} <= {"day", "week"}
    # The fixture delivers the CRM on 3 days of January, the web on 2, the support desk on 2
    # (then on 2 February): no period with a target is complete, so none raises a threshold
    # alert (the sample, delivered every day, raises them: tests/test_kpi_mart_sample.py),
    # and each value says why it cannot be trusted yet. No check failed (the raw days, with
    # no regular history, were not judged): an incomplete period is incomplete, a complete
    # one trusted unless a reason of its own (an anomaly, a restatement) makes it a warning.
    assert ("threshold",) not in raised
    assert revenue_january == (
        False,
        "crm 24 days (first 2026-01-06)",
        "incomplete",
        "missing source days: crm 24 days (first 2026-01-06)",
    )
    assert {(complete, status, unexplained) for complete, status, unexplained, _ in trust} <= {
        (False, "incomplete", False),
        (True, "trusted", True),
        (True, "warning", False),
    }
    assert (f"Alerts raised ({len(raised)}; see the table alerts):" in result.stdout) == bool(
        raised
    )


def test_failed_check_refuses_publication_and_keeps_the_mart(
    published_once, tmp_path, monkeypatch, webhook
):
    # The alerts reach a webhook that fails once, then accepts.
    hook = webhook(failures=1)
    monkeypatch.setenv("BOUSSOLE_ALERT_WEBHOOK_URL", hook.url)
    # A ticket_metrics version giving ticket 1 a negative reply time, in raw.
    workspace, refused = refused_with_raw_record(
        published_once, tmp_path, "raw_support.ticket_metrics", "negative_reply_time.jsonl"
    )
    # The suites failed on the values themselves (failed, not "could not run"): the one on
    # fct_tickets, and the one on the KPIs' ranges (the first response times of the slice
    # priority = normal fall below zero: -15 minutes on 5 January).
    assert set(reported_checks(refused.stderr)) == {
        ("gx_fct_tickets", "marts/fct_tickets"),
        ("gx_kpi_value_bounds", "kpi/kpi_values"),
    }
    assert "first_reply_minutes_not_negative failed (1 unexpected)" in refused.stderr
    assert "counts_money_durations_not_negative failed (" in refused.stderr
    assert "could not run" not in refused.stderr
    # A critical alert per failed check, raised by this run; with the alerts of the first
    # run (no webhook then), posted in one message, twice (the first attempt failed), and
    # recorded as delivered.
    failed = sorted(f"{check} on {asset}" for check, asset in reported_checks(refused.stderr))
    with duckdb.connect(str(workspace.data / "history" / "publications.duckdb")) as history:
        raised_now = history.execute(
            "select check_name from alerts where run_id = ? and kind = 'check_failed' "
            "and severity = 'critical' order by check_name",
            [dagster_run_id(refused)],
        ).fetchall()
        delivery = history.execute(
            "select count(*), count(notified_at), min(notification_attempts), "
            "max(notification_attempts) from alerts where state = 'open'"
        ).fetchone()
    assert raised_now == [(check,) for check in failed]
    assert len(hook.received) == 2 and hook.received[0] == hook.received[1]
    text = hook.received[0][1]["text"]
    assert text.startswith(f"Boussole: {delivery[0]} alert(s), ")
    assert all(f"- [critical] Check {check} failed: " in text for check in failed)
    assert delivery[1:] == (delivery[0], 2, 2)
    assert f"Alerts raised ({len(failed)}" in refused.stderr


def land_bad_input(workspace, relative_path: str, fixture: str) -> None:
    """Lands tests/fixtures/bad_inputs/<fixture> as <landing>/<relative_path>."""
    path = workspace.landing / relative_path
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(FIXTURES / "bad_inputs" / fixture, path)


def land_web_event(workspace, day: str, session: int) -> None:
    """Lands a web extract of `day` holding one clean event: a session start at 10:00 UTC."""
    compact = day.replace("-", "")
    start = datetime.fromisoformat(f"{day}T10:00:00+00:00")
    event = {
        "event_date": compact,
        "event_timestamp": int(start.timestamp()) * 1_000_000,
        "event_name": "session_start",
        "event_params": [{"key": "ga_session_id", "value": {"int_value": session}}],
        "user_pseudo_id": "u9",
        "device": {"category": "desktop"},
        "geo": {"country": "France"},
        "platform": "WEB",
    }
    new_day = workspace.landing / "web" / day
    new_day.mkdir(parents=True)
    (new_day / f"events_{compact}.jsonl").write_text(json.dumps(event) + "\n")


def load_of(workspace, file_path: str) -> list[tuple]:
    """(status, rows read, loaded, quarantined) of a landed file in the load manifest."""
    warehouse = workspace.data / "build" / "warehouse.duckdb"
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        return conn.execute(
            "select status, rows_read, rows_loaded, rows_quarantined from ingestion.load_manifest "
            "where file_path = ?",
            [file_path],
        ).fetchall()


def reported_checks(stderr: str) -> list[tuple[str, str]]:
    """(check, asset) of each check that `boussole run` reports as stopping the run."""
    return re.findall(r"^  - check (\S+) on (\S+) failed", stderr, flags=re.MULTILINE)


def refused_after_landing(small_run, tmp_path, relative_path: str, fixture: str):
    """A copy of the shared run, a bad input landed (its one record loads cleanly) and the
    pipeline run again: publication is refused and the served mart stays byte for byte as it
    was. Returns the workspace and the refused run."""
    workspace = copy_workspace(small_run[0], tmp_path)
    served = workspace.published.read_bytes()
    land_bad_input(workspace, relative_path, fixture)
    # Beside it, a file of no object of the contract.
    (workspace.landing / Path(relative_path).parent / "leads.jsonl").write_text('{"id": "1"}\n')
    refused = workspace.boussole("run")
    assert_refused(workspace, refused, served)
    assert load_of(workspace, relative_path) == [("loaded", 1, 1, 0)]
    return workspace, refused


def refused_with_raw_record(small_run, tmp_path, raw_table: str, fixture: str, *run_options: str):
    """A copy of the shared run whose raw table holds a record that no rule of today's gate
    lets in, as a warehouse loaded by an earlier, laxer version can, and the pipeline run
    again (with `run_options`, else over a new extract day of one clean web event): the tables
    are built again from raw, publication is refused and the served mart stays as it was."""
    workspace = copy_workspace(small_run[0], tmp_path)
    served = workspace.published.read_bytes()
    record = (FIXTURES / "bad_inputs" / fixture).read_text().strip()
    with duckdb.connect(str(workspace.data / "build" / "warehouse.duckdb")) as conn:
        conn.execute(
            f"insert into {raw_table} values (?::json, DATE '2026-02-03', ?, 1, ?)",
            [record, f"earlier-version/{fixture}", "0" * 64],
        )
    if not run_options:
        land_web_event(workspace, "2026-02-03", session=900)
    refused = workspace.boussole("run", *run_options)
    assert_refused(workspace, refused, served)
    return workspace, refused


def dagster_run_id(run: subprocess.CompletedProcess) -> str:
    return re.search(r"^Dagster run (\S+)$", run.stderr, flags=re.MULTILINE).group(1)


def assert_refused(workspace, refused, served: bytes) -> None:
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "Publication refused: the published mart is unchanged." in refused.stderr
    assert workspace.published.read_bytes() == served


def test_failed_dbt_test_refuses_publication_and_keeps_the_mart(published_once, tmp_path):
    # Deal 9 is in XAU, a currency with no FX rate: each record passes ingestion, but its
    # amount in the reporting currency is null, and the dbt test not_null on
    # fct_deals.amount_reporting (error severity) fails.
    _, refused = refused_after_landing(
        published_once,
        tmp_path,
        "crm/2026-02-03/deals.jsonl",
        "deal_in_currency_without_rate.jsonl",
    )
    # Only the date of the new file is read.
    assert "extract dates 2026-02-03 to 2026-02-03" in refused.stdout
    # The dbt tests of a model report as its one check, dbt_tests, naming the test that failed.
    assert reported_checks(refused.stderr) == [("dbt_tests", "marts/fct_deals")]
    assert (
        "check dbt_tests on marts/fct_deals failed: "
        "not_null_fct_deals_amount_reporting failed on 1 row"
    ) in refused.stderr
    # What the landing folder holds and no object claims is said, refused run or not.
    summary = refused.stdout[refused.stdout.index("Ingestion set aside") :]
    assert "  - crm/2026-02-03/leads.jsonl: ignored, unknown object: the crm objects" in summary


def test_a_check_that_could_not_run_refuses_publication(published_once, tmp_path, monkeypatch):
    # Ticket 6 is created at "infinity", in raw: DuckDB reads that text as a timestamp, so
    # every dbt test passes, but its creation date has no pandas value: the suite on
    # fct_tickets cannot read its table. Its expectations could not run, which refuses
    # publication as a failure would, and is reported as such, not as failed.
    # In full, as a user who suspects the warehouse would: the one run through Dagster of
    # `boussole run --full-refresh`.
    workspace, refused = refused_with_raw_record(
        published_once, tmp_path, "raw_support.tickets", "created_at_infinity.jsonl",
        "--full-refresh",
    )  # fmt: skip
    monkeypatch.setenv("DAGSTER_HOME", str(workspace.dagster_home))
    with dg.DagsterInstance.get() as instance:
        logged = instance.get_records_for_run(dagster_run_id(refused)).records
    assert "Full refresh: the incremental models are rebuilt from all raw rows" in {
        record.event_log_entry.user_message for record in logged
    }
    assert reported_checks(refused.stderr) == [("gx_fct_tickets", "marts/fct_tickets")]
    assert (
        "solved_not_before_created could not run: cannot read marts.fct_tickets" in refused.stderr
    )
    assert "unexpected)" not in refused.stderr  # no expectation failed on values
    # The run's results file tells each expectation of the suite apart as could not run.
    results = json.loads(
        (workspace.data / "quality" / "fct_tickets" / f"{dagster_run_id(refused)}.json").read_text()
    )
    suite = yaml.safe_load((PROJECT_ROOT / "data_quality/suites/fct_tickets.yml").read_text())
    assert results["passed"] is False
    assert [(o["name"], o["status"]) for o in results["outcomes"]] == [
        (expectation["name"], "error") for expectation in suite["expectations"]
    ]


# Materialises published_mart alone with the project's Definitions and Dagster instance (from
# the environment, as `boussole run` does): none of its checks is in the run. Prints what
# happened, and the blocking checks on the mart tables, as JSON.
PUBLISH_ALONE = """
import json, sys
import dagster as dg
from orchestration.definitions import PUBLISHED_GROUPS, defs

graph = defs.resolve_asset_graph()
guarding = sorted(
    f"{spec.key.name} on {spec.asset_key.to_user_string()}"
    for assets_def in graph.assets_defs
    for spec in assets_def.check_specs
    if spec.blocking
    and graph.get(spec.asset_key).group_name in PUBLISHED_GROUPS
    and not spec.asset_key.path[-1].startswith("int_")
)
job = defs.resolve_job_def("boussole_pipeline")
with dg.DagsterInstance.get() as instance:
    result = job.execute_in_process(
        instance=instance,
        asset_selection=[dg.AssetKey("published_mart")],
        partition_key=sys.argv[1],
        raise_on_error=False,
    )
print(json.dumps({
    "success": result.success,
    "steps": sorted({event.step_key for event in result.all_events if event.step_key}),
    "checks_evaluated": [
        event.event_specific_data.check_name
        for event in result.all_events
        if event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
    ],
    "refusals": [
        event.step_failure_data.user_failure_data.description
        for event in result.get_step_failure_events()
        if event.step_failure_data.user_failure_data
    ],
    "guarding": guarding,
}))
"""


def test_publication_is_refused_when_its_checks_did_not_run(published_once, tmp_path):
    workspace = copy_workspace(published_once[0], tmp_path)
    served = workspace.published.read_bytes()
    completed = workspace.python("-c", PUBLISH_ALONE, AS_OF)
    assert completed.returncode == 0, completed.stderr[-3000:]
    outcome = json.loads(completed.stdout.splitlines()[-1])

    assert (outcome["success"], outcome["steps"], outcome["checks_evaluated"]) == (
        False,
        ["published_mart"],
        [],
    )
    (refusal,) = outcome["refusals"]
    prefix = "Publication refused, the published mart is unchanged: "
    assert refusal.startswith(prefix)
    not_run = refusal.removeprefix(prefix).split("; ")
    # Every blocking check on a mart table is named, as not run: the GX suites and the dbt
    # tests of error severity.
    assert sorted(not_run) == [f"{check} (did not run)" for check in outcome["guarding"]]
    assert {
        "gx_fct_tickets on marts/fct_tickets",
        "dbt_tests on marts/fct_tickets",
    } <= set(outcome["guarding"])
    assert workspace.published.read_bytes() == served


def test_a_run_reexecuted_from_its_failed_publication_publishes_the_build_it_audited(
    published_once, tmp_path
):
    """Dagster's "Re-execute from failure" after a publication that failed (here its folder
    could not be written): the new run runs the publication alone, which counts the checks of
    the run it re-executes, since that run built the warehouse. It publishes that build, with
    the same values and trust, and records it: the next run finds nothing new."""
    workspace = copy_workspace(published_once[0], tmp_path)
    values = all_kpi_rows(workspace.published)
    # Without a record of the served mart's build, a run builds, audits and publishes again.
    forget_publication(Settings.from_env(workspace.env))
    folder = workspace.published.parent
    folder.rename(tmp_path / "aside")
    folder.write_text("a file where the published folder should be")
    failed = workspace.boussole("run")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "Publication refused: the published mart is unchanged." in failed.stderr
    folder.unlink()
    (tmp_path / "aside").rename(folder)
    served = workspace.published.read_bytes()

    reexecuted = workspace.python("-m", "tests.reexecution", dagster_run_id(failed))
    assert reexecuted.returncode == 0, reexecuted.stderr[-3000:]
    outcome = json.loads(reexecuted.stdout.splitlines()[-1])
    assert (outcome["success"], outcome["steps"]) == (True, ["published_mart"])
    assert workspace.published.read_bytes() != served
    assert all_kpi_rows(workspace.published) == values
    with duckdb.connect(str(workspace.data / "history" / "publications.duckdb")) as history:
        latest = history.execute("select max_by(run_id, publication_number) from publications")
        assert latest.fetchone()[0] == outcome["run_id"]
    again = workspace.boussole("run")
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.startswith("Nothing new in "), again.stdout


def test_two_runs_at_once_never_write_the_warehouse_together(published_once, tmp_path, monkeypatch):
    import time

    from dagster import DagsterInstance

    from tests.conftest import BOUSSOLE

    # On from the shared run, a new extract day: the first run ingests it, builds, audits and
    # publishes; the second, started meanwhile over the same day, waits for the warehouse.
    workspace = copy_workspace(published_once[0], tmp_path)
    land_web_event(workspace, "2026-02-03", session=900)
    command = [str(BOUSSOLE), "run", "--start", "2026-02-03", "--end", "2026-02-03"]
    outputs = [tmp_path / "first.out", tmp_path / "second.out"]
    processes = []
    for output in outputs:
        with output.open("w") as written:
            processes.append(
                subprocess.Popen(
                    command, env=workspace.env, stdout=written, stderr=subprocess.STDOUT
                )
            )
        time.sleep(5)
    for process, output in zip(processes, outputs, strict=True):
        # What the run printed, to tell why it failed.
        assert process.wait(timeout=900) == 0, output.read_text()[-3000:]

    # Every step that opens the DuckDB file sits in the duckdb_warehouse pool (limit 1):
    # the steps of the two runs take turns, none overlaps another run's step.
    monkeypatch.setenv("DAGSTER_HOME", str(workspace.dagster_home))
    with DagsterInstance.get() as instance:
        runs = instance.get_runs(limit=2)
        assert len(runs) == 2
        steps = [
            (stats.start_time, stats.end_time, run.run_id)
            for run in runs
            for stats in instance.get_run_step_stats(run.run_id)
            # A step skipped (never started) opens nothing.
            if stats.start_time is not None
        ]
    # Both ingested and ran dbt; the second may find the mart the first published current
    # (nothing new) and leave it, skipping its suites and publication.
    assert len(steps) >= 12
    overlapping = [(a, b) for a in steps for b in steps if a[2] != b[2] and a[0] < b[0] < a[1]]
    assert overlapping == []


def test_dbt_docs_generate_describes_every_model_and_column(published_once, tmp_path):
    # On a copy: dbt opens the warehouse for writing, and the shared one stays as the run left it.
    workspace = copy_workspace(published_once[0], tmp_path / "workspace")
    target = tmp_path / "target"
    generated = run_dbt(
        *("docs", "generate"),
        warehouse=workspace.data / "build" / "warehouse.duckdb",
        target=target,
        pii_key=workspace.env["BOUSSOLE_PII_KEY"],
    )
    assert generated.returncode == 0, generated.stdout + generated.stderr
    manifest = json.loads((target / "manifest.json").read_text())
    catalog = json.loads((target / "catalog.json").read_text())
    kpi_ids = {
        kpi["id"]
        for kpi in manifest["nodes"]["model.boussole.kpi_catalogue"]["config"]["meta"]["kpis"]
    }
    undocumented = []
    for unique_id, node in manifest["nodes"].items():
        if node["resource_type"] not in ("model", "seed"):
            continue
        if not node["description"].strip():
            undocumented.append(unique_id)
        documented = {
            name for name, column in node["columns"].items() if column["description"].strip()
        }
        built = catalog["nodes"][unique_id]["columns"]
        # The wide views have one column per KPI, described by the kpi_catalogue table.
        missing = {c for c in built if c not in documented and c not in kpi_ids}
        undocumented.extend(f"{unique_id}.{column}" for column in sorted(missing))
    assert not undocumented, undocumented
