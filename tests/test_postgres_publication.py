"""The published mart in PostgreSQL (boussole/postgres_publication.py), on a real server
(tests/postgres_server.py): the values equal the DuckDB mart's, a reader querying during
publications never errors and never sees a mix of two, and the read-only role BI tools log
in as reads the mart and nothing else.

The marts are the landing_small run's and a second publication after it (conftest
two_publications); the publications alternate between them.
"""

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import replace

import dagster as dg
import duckdb
import psycopg2
import pytest

from boussole.postgres_publication import (
    PostgresPublication,
    ServedSchemaInUse,
    publish_to_postgres,
    published_relations,
)
from boussole.settings import PostgresPublishing, Settings
from orchestration.assets.postgres_publication import postgres_mart
from orchestration.resources import SettingsResource
from tests.postgres_server import connect, running_server

READER = "bi_reader"
READER_PASSWORD = "correct horse battery staple"
# The state of one publication, read in one statement: which publication, and two tables'
# sizes (kpi_value_history holds one more version in the second).
STATE_QUERY = """
    select (select publication_id from publications order by publication_number desc limit 1),
        (select count(*) from kpi_values), (select count(*) from kpi_value_history)
"""


@pytest.fixture(scope="module")
def postgres_env():
    with running_server(password_users=(READER,)) as env:
        yield env


@pytest.fixture(scope="module")
def target(postgres_env) -> PostgresPublishing:
    return PostgresPublishing(
        host=postgres_env["BOUSSOLE_PG_HOST"],
        port=postgres_env["BOUSSOLE_PG_PORT"],
        user=postgres_env["BOUSSOLE_PG_USER"],
        dbname=postgres_env["BOUSSOLE_PG_DATABASE"],
        reader_role=READER,
        reader_password=READER_PASSWORD,
    )


def duckdb_state(mart) -> tuple:
    with duckdb.connect(str(mart), read_only=True) as conn:
        return conn.execute(STATE_QUERY).fetchone()


def as_reader(postgres_env, **overrides) -> psycopg2.extensions.connection:
    connection = connect(postgres_env, user=READER, password=READER_PASSWORD, **overrides)
    connection.autocommit = True
    return connection


class Reader(threading.Thread):
    """Queries the served mart as the BI role until stopped, in one of three ways: one
    statement; a prepared statement, planned once and executed again and again; or a
    repeatable-read transaction of two statements with a pause between, which holds the old
    tables while a swap wants them. Keeps every state it saw and every error."""

    def __init__(self, postgres_env, way: str):
        super().__init__(daemon=True)
        self.postgres_env, self.way = postgres_env, way
        self.states: list[tuple] = []
        self.errors: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        with closing(as_reader(self.postgres_env)) as connection, connection.cursor() as cursor:
            if self.way == "prepared":
                cursor.execute(f"prepare served_state as {STATE_QUERY}")
            while not self.stop.is_set():
                try:
                    self.states.append(self._read(cursor))
                except psycopg2.Error as error:
                    self.errors.append(f"{self.way}: {error}")
                    if connection.info.transaction_status != 0:
                        cursor.execute("rollback")
                # A dashboard's pause between two reads (back-to-back transactions that never
                # let go of the tables would keep the swap waiting, up to its patience), and a
                # short one between queries, which leaves the server some of the two cores.
                self.stop.wait(0.1 if self.way == "transaction" else 0.005)

    def _read(self, cursor) -> tuple:
        if self.way == "statement":
            cursor.execute(STATE_QUERY)
            return cursor.fetchone()
        if self.way == "prepared":
            cursor.execute("execute served_state")
            return cursor.fetchone()
        cursor.execute("begin isolation level repeatable read")
        cursor.execute(
            "select publication_id from publications order by publication_number desc limit 1"
        )
        (publication,) = cursor.fetchone()
        time.sleep(0.05)
        cursor.execute("select count(*), (select count(*) from kpi_value_history) from kpi_values")
        state = (publication, *cursor.fetchone())
        cursor.execute("commit")
        return state


@pytest.fixture(scope="module")
def publications_under_readers(two_publications, target, postgres_env):
    """The first mart published, then readers started, then three publications alternating the
    second and the first mart, ending with the second. Returns the readers and the
    publications."""
    published = [publish_to_postgres(two_publications.first, target)]
    readers = [Reader(postgres_env, way) for way in ("statement", "prepared", "transaction")]
    for reader in readers:
        reader.start()
    try:
        time.sleep(0.3)
        for mart in (two_publications.second, two_publications.first, two_publications.second):
            published.append(publish_to_postgres(mart, target))
            time.sleep(0.2)
    finally:
        for reader in readers:
            reader.stop.set()
            reader.join(timeout=30)
    return readers, published


def test_a_reader_during_publications_never_errors_and_sees_one_publication_at_a_time(
    publications_under_readers, two_publications
):
    readers, _ = publications_under_readers
    states = {duckdb_state(two_publications.first), duckdb_state(two_publications.second)}
    assert len(states) == 2
    for reader in readers:
        assert reader.errors == []
        assert len(reader.states) > 10, reader.way
        assert set(reader.states) <= states, reader.way
    # The statement reader saw both publications: the swaps happened while it read.
    assert set(readers[0].states) == states


def test_every_value_in_postgres_equals_the_duckdb_mart(
    publications_under_readers, two_publications, postgres_env
):
    published: PostgresPublication = publications_under_readers[1][-1]
    with duckdb.connect(str(two_publications.second), read_only=True) as duck:
        relations = published_relations(duck)
        duckdb_counts = {
            name: duck.execute(f'select count(*) from "{name}"').fetchone()[0] for name in relations
        }
        columns = [row[0] for row in duck.execute("describe kpi_values").fetchall()]
        order = "order by kpi_id, grain, period_start, dimension, dimension_value"
        duckdb_values = duck.execute(f"select * from kpi_values {order}").fetchall()
    with closing(as_reader(postgres_env)) as connection, connection.cursor() as cursor:
        postgres_counts = {}
        for name in relations:
            cursor.execute(f'select count(*) from "{name}"')
            postgres_counts[name] = cursor.fetchone()[0]
        cursor.execute(f"select * from kpi_values {order}")
        assert [column.name for column in cursor.description] == columns
        postgres_values = cursor.fetchall()
    assert {"kpi_values", "kpi_value_history", "kpi_restatements", "quality_results", "alerts",
            "kpi_anomalies", "publications", "fct_deals", "dim_date"} <= set(relations)  # fmt: skip
    assert postgres_counts == duckdb_counts == published.row_counts
    assert len(duckdb_values) > 1000
    # Every column of every row, doubles included: the CSV between them keeps every digit.
    assert postgres_values == duckdb_values


def test_a_transaction_holding_the_served_tables_makes_the_swap_wait_and_try_again(
    publications_under_readers, two_publications, postgres_env, target
):
    served, next_one = duckdb_state(two_publications.second), duckdb_state(two_publications.first)
    with (
        closing(as_reader(postgres_env)) as reader,
        reader.cursor() as cursor,
        closing(connect(postgres_env)) as admin,
        admin.cursor() as watching,
        ThreadPoolExecutor(1) as publisher,
    ):
        admin.autocommit = True
        cursor.execute("begin isolation level repeatable read")
        cursor.execute(
            "select publication_id from publications order by publication_number desc limit 1"
        )
        (publication,) = cursor.fetchone()
        publishing = publisher.submit(publish_to_postgres, two_publications.first, target)
        # Until the swap waits for the table this transaction read (publications), holding
        # those it locked before it (kpi_values among them).
        while not publishing.done():
            watching.execute(
                "select count(*) from pg_locks join pg_class on oid = relation "
                "where not granted and relname = 'publications'"
            )
            if watching.fetchone()[0]:
                break
            time.sleep(0.02)
        # A table the swap holds: each waits for the other, and the swap gives up first.
        cursor.execute("select count(*), (select count(*) from kpi_value_history) from kpi_values")
        assert (publication, *cursor.fetchone()) == served
        cursor.execute("commit")
        assert publishing.result(timeout=120).swap_attempts > 1
        cursor.execute(STATE_QUERY)
        assert cursor.fetchone() == next_one
    # The second mart served again, as the tests below expect.
    publish_to_postgres(two_publications.second, target)


def test_the_reader_role_reads_the_mart_and_nothing_else(
    publications_under_readers, postgres_env, target
):
    with closing(connect(postgres_env)) as admin, admin, admin.cursor() as cursor:
        # What else such a server holds: `boussole postgres`'s raw and ingestion schemas (the
        # quarantine with the raw text of records), and a table in the public schema.
        cursor.execute(
            "create schema raw_crm; create table raw_crm.deals (_raw json);"
            "create schema ingestion; create table ingestion.load_manifest (file_path text);"
            "create table ingestion.quarantine (raw_text text);"
            'insert into ingestion.quarantine values (\'{"email": "jane@example.com"}\');'
            "create table public.notes (note text)"
        )
        # Stored as a SCRAM verifier: the clear password never reached the server.
        cursor.execute("select rolpassword from pg_authid where rolname = %s", [READER])
        assert cursor.fetchone()[0].startswith("SCRAM-SHA-256$")
        # A table someone adds to the served schema later is readable too (default privileges).
        cursor.execute(f"create table {target.schema}.added_later as select 1 as one")
    with closing(as_reader(postgres_env)) as connection, connection.cursor() as cursor:
        cursor.execute("select count(*) from kpi_values")
        assert cursor.fetchone()[0] > 1000
        cursor.execute("select one from added_later")
        assert cursor.fetchall() == [(1,)]
        for table in ("raw_crm.deals", "ingestion.load_manifest", "ingestion.quarantine",
                      "public.notes"):  # fmt: skip
            with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                cursor.execute(f"select * from {table}")
        # Read-only by default; and with that default turned off, still no right to create.
        with pytest.raises(psycopg2.errors.ReadOnlySqlTransaction):
            cursor.execute("create table kpi_copy as select * from kpi_values")
        cursor.execute("set default_transaction_read_only = off")
        for statement in (
            f"create table {target.schema}.kpi_copy (one int)",
            "create table public.kpi_copy (one int)",
            "create schema mine",
            f"drop table {target.schema}.kpi_values",
            f"insert into {target.schema}.kpi_values (kpi_id) values ('forged')",
        ):
            with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                cursor.execute(statement)
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        connect(postgres_env, user=READER, password="wrong")


def test_a_view_made_outside_the_served_schema_refuses_the_swap(
    publications_under_readers, two_publications, postgres_env, target
):
    served = duckdb_state(two_publications.second)
    with closing(connect(postgres_env)) as admin, admin, admin.cursor() as cursor:
        cursor.execute(
            "create schema analyst; create view analyst.revenue as "
            f"select * from {target.schema}.kpi_values where kpi_id = 'revenue'"
        )
    with pytest.raises(ServedSchemaInUse, match=r"view analyst\.revenue"):
        publish_to_postgres(two_publications.first, target)
    with closing(as_reader(postgres_env)) as connection, connection.cursor() as cursor:
        cursor.execute(STATE_QUERY)
        assert cursor.fetchone() == served
        cursor.execute("select nspname from pg_namespace where nspname like %s", ["%__loading"])
        assert cursor.fetchall() == []
    with closing(connect(postgres_env)) as admin, admin, admin.cursor() as cursor:
        cursor.execute("drop schema analyst cascade")


def test_the_dagster_asset_publishes_the_served_mart_with_its_metadata(
    publications_under_readers, two_publications, postgres_env, target, monkeypatch
):
    # Settings from the environment, as the definitions read them, through the resource.
    environment = {
        **postgres_env,
        "BOUSSOLE_PG_PUBLISH": "1",
        "BOUSSOLE_PG_SCHEMA": "mart_from_dagster",
        "BOUSSOLE_PG_READER_ROLE": READER,
        "BOUSSOLE_PG_READER_PASSWORD": READER_PASSWORD,
        "BOUSSOLE_DATA_DIR": str(two_publications.data),
        "BOUSSOLE_PII_KEY": "test-key-for-boussole-tests",
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    settings = Settings.from_env()
    assert settings.postgres_publishing == replace(target, schema="mart_from_dagster", password="")
    result = dg.materialize(
        [postgres_mart], resources={"settings": SettingsResource.from_settings(settings)}
    )
    assert result.success
    metadata = result.asset_materializations_for_node("postgres_mart")[0].metadata
    assert metadata["schema"].value == "mart_from_dagster"
    assert metadata["publication_id"].value == duckdb_state(two_publications.second)[0]
    with duckdb.connect(str(two_publications.second), read_only=True) as duck:
        tables = metadata["tables"].value
        assert tables.keys() == set(published_relations(duck))
        assert tables["kpi_values"] == duck.execute("select count(*) from kpi_values").fetchone()[0]
    assert metadata["seconds"].value > 0
    # The reader's search path follows the schema of the latest publication.
    with closing(as_reader(postgres_env)) as connection, connection.cursor() as cursor:
        cursor.execute("show search_path")
        assert cursor.fetchone() == ("mart_from_dagster",)
