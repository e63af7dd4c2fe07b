"""The dbt project on a real PostgreSQL server (`boussole postgres`).

The same models, data tests and unit tests pass there, a daily run stays incremental, and
the KPI mart holds exactly the figures of the DuckDB build of the same extracts.

The server is a throwaway cluster of the machine's PostgreSQL (tests/postgres_server.py).
"""

import shutil
import subprocess
from contextlib import closing

import duckdb
import psycopg2
import pytest

from boussole.ingestion.loader import ensure_ingestion_tables
from boussole.postgres import copy_ingested_tables
from tests.conftest import BOUSSOLE, make_workspace
from tests.postgres_server import running_server

# Builds on the sample's DuckDB runs, shared with tests/test_kpi_mart_sample.py (conftest).
pytestmark = pytest.mark.e2e

KPI_KEY = ("kpi_id", "grain", "period_start", "dimension", "dimension_value")
KPI_FIGURES = (
    "numerator", "denominator", "value", "secondary_value", "previous_value", "change", "target",
    "pacing_target", "baseline", "attainment",
)  # fmt: skip


@pytest.fixture(scope="module")
def postgres_env():
    """A running server with an empty database; yields the BOUSSOLE_PG_* variables."""
    with running_server() as env:
        yield env


@pytest.fixture(scope="module")
def built_on_both(sample_history, tmp_path_factory, postgres_env):
    """The DuckDB warehouse after the sample's first run (fourteen extract days), then after
    its first daily run (a fifteenth), each followed by `boussole postgres`. Returns a
    workspace holding the second warehouse and the output of both builds."""
    workspace = make_workspace(tmp_path_factory.mktemp("postgres"))
    warehouse = workspace.data / "build" / "warehouse.duckdb"
    warehouse.parent.mkdir(parents=True)
    outputs = []
    for built_duckdb in sample_history.warehouses.values():
        shutil.copy(built_duckdb, warehouse)
        built = subprocess.run(
            [str(BOUSSOLE), "postgres"],
            env={**workspace.env, **postgres_env},
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert built.returncode == 0, built.stdout[-5000:] + built.stderr[-2000:]
        outputs.append(built.stdout)
    return workspace, outputs


def postgres_rows(postgres_env: dict[str, str], query: str) -> list[tuple]:
    connection = psycopg2.connect(
        host=postgres_env["BOUSSOLE_PG_HOST"],
        port=postgres_env["BOUSSOLE_PG_PORT"],
        user=postgres_env["BOUSSOLE_PG_USER"],
        dbname=postgres_env["BOUSSOLE_PG_DATABASE"],
    )
    try:
        with connection.cursor() as cursor:
            cursor.execute(query)
            return cursor.fetchall()
    finally:
        connection.close()


def duckdb_rows(workspace, query: str) -> list[tuple]:
    with duckdb.connect(str(workspace.data / "build" / "warehouse.duckdb"), read_only=True) as conn:
        return conn.execute(query).fetchall()


def test_every_model_and_test_passes_on_postgres(built_on_both):
    _, outputs = built_on_both
    for output in outputs:
        # dbt's summary line: the whole project, nothing failed or skipped (a warning is a
        # finding on the sample data, such as contacts of companies not delivered yet).
        summary = next(line for line in output.splitlines() if "Done. PASS=" in line)
        assert "ERROR=0" in summary and "SKIP=0" in summary, summary
        assert "Copied 23 ingested tables" in output


def test_the_daily_run_on_postgres_is_incremental(built_on_both, postgres_env):
    # The web events of the first fourteen days were staged by the first build, the
    # fifteenth day's by the second: two run stamps, as the DuckDB warehouse has.
    stamps = "select count(distinct _transformed_at) from staging.stg_web__events"
    workspace, _ = built_on_both
    assert postgres_rows(postgres_env, stamps) == [(2,)]
    assert duckdb_rows(workspace, stamps) == [(2,)]
    # Raw rows were copied once each: PostgreSQL holds what DuckDB holds, no more.
    count = "select count(*) from raw_web.events"
    assert postgres_rows(postgres_env, count) == duckdb_rows(workspace, count)


def test_kpi_values_on_postgres_equal_the_duckdb_build(built_on_both, postgres_env):
    workspace, _ = built_on_both
    columns = ", ".join((*KPI_KEY, *KPI_FIGURES, "status", "is_complete_period"))
    query = f"select {columns} from kpi.kpi_values"
    on_postgres = {row[:5]: row[5:] for row in postgres_rows(postgres_env, query)}
    on_duckdb = {row[:5]: row[5:] for row in duckdb_rows(workspace, query)}
    assert len(on_duckdb) > 1000
    assert on_postgres.keys() == on_duckdb.keys()
    differing = []
    for key, duck_row in on_duckdb.items():
        pg_row = on_postgres[key]
        for name, duck_value, pg_value in zip(
            (*KPI_FIGURES, "status", "is_complete_period"), duck_row, pg_row, strict=True
        ):
            if isinstance(duck_value, float) and pg_value is not None:
                # Sums of doubles may differ in the last bits with the order of rows.
                same = abs(duck_value - float(pg_value)) <= 1e-9 * max(1.0, abs(duck_value))
            else:
                same = duck_value == pg_value
            if not same:
                differing.append((key, name, duck_value, pg_value))
    assert differing == []


def test_pseudonyms_are_the_same_on_both_engines(built_on_both, postgres_env):
    # The keyed hash of an e-mail address is computed by each engine's own sha256.
    workspace, _ = built_on_both
    query = "select contact_id, email_hash from marts.dim_contact where email_hash is not null"
    on_postgres = set(postgres_rows(postgres_env, query))
    assert len(on_postgres) > 10
    assert on_postgres == set(duckdb_rows(workspace, query))


def test_the_copy_follows_raw_rows_that_leave_and_a_manifest_that_changed_shape(
    postgres_env, tmp_path
):
    # A database of its own on the same server: the builds above keep theirs.
    admin = psycopg2.connect(
        host=postgres_env["BOUSSOLE_PG_HOST"],
        port=postgres_env["BOUSSOLE_PG_PORT"],
        user=postgres_env["BOUSSOLE_PG_USER"],
        dbname=postgres_env["BOUSSOLE_PG_DATABASE"],
    )
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute("create database copy_check")
    admin.close()
    dsn = psycopg2.extensions.make_dsn(
        host=postgres_env["BOUSSOLE_PG_HOST"],
        port=postgres_env["BOUSSOLE_PG_PORT"],
        user=postgres_env["BOUSSOLE_PG_USER"],
        dbname="copy_check",
    )
    # A manifest in the shape of an earlier version (one row per content, other columns).
    with closing(psycopg2.connect(dsn)) as connection, connection, connection.cursor() as c:
        c.execute("create schema ingestion")
        c.execute("create table ingestion.load_manifest (file_sha256 text primary key)")
    duck = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    ensure_ingestion_tables(duck)
    rows = [("a.jsonl", "A", n) for n in (1, 2, 3)] + [("b.jsonl", "B", 1), ("c.jsonl", "C", 1)]
    duck.executemany(
        "insert into raw_crm.deals values ('{}', DATE '2026-01-05', ?, ?, ?)",
        [(path, number, sha) for path, sha, number in rows],
    )
    duck.execute(
        "insert into ingestion.load_manifest (file_path, file_sha256, status) "
        "values ('a.jsonl', 'A', 'loaded'), ('x/', null, 'ignored')"
    )
    copy_ingested_tables(duck, dsn)
    # A record quarantined by hand, a delivery replaced, a content owned by another path.
    duck.execute("delete from raw_crm.deals where _file_sha256 = 'A' and _record_number = 2")
    duck.execute("delete from raw_crm.deals where _file_sha256 = 'C'")
    duck.execute("update raw_crm.deals set _source_file = 'b2.jsonl' where _file_sha256 = 'B'")
    duck.execute("insert into raw_crm.deals values ('{}', DATE '2026-01-06', 'd.jsonl', 1, 'D')")
    copied = copy_ingested_tables(duck, dsn)
    assert copied["raw_crm.deals"] == 4  # A's two rows, B's and D's; C's are gone
    query = "select _source_file, _record_number, _file_sha256 from raw_crm.deals order by 1, 2"
    with closing(psycopg2.connect(dsn)) as connection, connection.cursor() as c:
        c.execute(query)
        assert c.fetchall() == duck.execute(query).fetchall()
        c.execute("select file_path, file_sha256, status from ingestion.load_manifest order by 1")
        assert c.fetchall() == [("a.jsonl", "A", "loaded"), ("x/", None, "ignored")]
    duck.close()
