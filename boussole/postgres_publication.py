"""The published mart in PostgreSQL, for BI tools that connect to a server.

After each publication, every table and view of the served DuckDB mart is loaded into a new
schema, which then replaces the served one in the same transaction: the served schema is
renamed away, the new one renamed in, the old one dropped. A reader's query sees one
publication or the next, never a mix and never an error: it resolves its names when it runs
(a prepared statement is planned again), and a reader holding the old tables (a query
running, a transaction that read them) makes the swap wait for it and try again, rather than
the reader fail. The rows are written frozen, so a repeatable-read transaction that began
before the swap and first reads after it sees the new tables full, not empty. Views of the
DuckDB mart (kpi_value_history) are loaded as tables: their rows as published, not a second
copy of their SQL.

A role for BI tools (`boussole_reader` by default) is ensured on the way: it may log in, read
the served schema (its search path, so `select * from kpi_values` works) and nothing else. The
publishing user needs CREATE on the database and, to make or change that role, CREATEROLE.
"""

from __future__ import annotations

import random
import tempfile
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import duckdb
import psycopg2
from psycopg2 import errors, sql

from boussole.postgres import copy_rows, create_table, postgres_columns
from boussole.settings import PostgresPublishing
from boussole.sql import quote_identifier

# pg_advisory_xact_lock key: one publication at a time per database (two runs may end together).
PUBLICATION_LOCK = 0x626F7573736F6C65
# Each try of the swap waits at most this long for a lock. Below PostgreSQL's default
# deadlock_timeout (1 s): when a reader and the swap wait for each other (the reader's
# transaction holds one old table and asks for another), the swap gives up first.
SWAP_LOCK_TIMEOUT = "500ms"
# How long the swap keeps trying while readers hold the served tables.
SWAP_PATIENCE_SECONDS = 300.0


class ServedSchemaInUse(RuntimeError):
    """Objects outside the served schema depend on it: replacing it would drop them."""


@dataclass(frozen=True)
class PostgresPublication:
    schema: str
    row_counts: dict[str, int]
    seconds: float
    # The latest publication of the history, when the mart has one.
    publication_id: str | None
    # How many tries the swap took (more than one: readers held the served tables).
    swap_attempts: int


def publish_to_postgres(published_path: Path, target: PostgresPublishing) -> PostgresPublication:
    """Loads the served DuckDB mart at `published_path` into PostgreSQL and makes it the
    served schema, in one transaction; ensures the reader role first."""
    began = time.perf_counter()
    loading = f"{target.schema}__loading"
    # Read-only: a publication replacing the file meanwhile leaves this snapshot whole.
    with (
        tempfile.TemporaryDirectory() as folder,
        duckdb.connect(str(published_path), read_only=True) as duck,
        closing(psycopg2.connect(**target.connection_parameters())) as connection,
        connection,
        connection.cursor() as cursor,
    ):
        cursor.execute("select pg_advisory_xact_lock(%s)", [PUBLICATION_LOCK])
        ensure_reader_role(cursor, target)
        # Uncommitted until the swap: no reader sees it, a failure leaves nothing behind.
        cursor.execute(sql.SQL("create schema {}").format(sql.Identifier(loading)))
        grant_reading(cursor, loading, target.reader_role)
        row_counts = {}
        for number, relation in enumerate(published_relations(duck)):
            columns = postgres_columns(duck, "main", relation)
            table = sql.Identifier(loading, relation)
            create_table(cursor, table, columns)
            row_counts[relation] = copy_rows(
                duck,
                cursor,
                f"select * from {quote_identifier('main', relation)}",
                columns,
                table,
                Path(folder) / f"{number}.csv",
                # A repeatable-read reader whose snapshot predates the swap, and whose first
                # query waited for it, reads the new tables: it must see their rows.
                freeze=True,
            )
            # Statistics for the planner, before BI tools query it.
            cursor.execute(sql.SQL("analyze {}").format(table))
        attempts = _swap(cursor, target.schema, loading)
        publication_id = _latest_publication(duck)
    return PostgresPublication(
        schema=target.schema,
        row_counts=row_counts,
        seconds=time.perf_counter() - began,
        publication_id=publication_id,
        swap_attempts=attempts,
    )


def published_relations(duck: duckdb.DuckDBPyConnection) -> list[str]:
    """Every table and view of the published mart (all in its main schema)."""
    return [
        name
        for (name,) in duck.execute(
            """
            select table_name from duckdb_tables()
            where database_name = current_database() and schema_name = 'main'
            union all
            select view_name from duckdb_views()
            where database_name = current_database() and schema_name = 'main' and not internal
            order by 1
            """
        ).fetchall()
    ]


def ensure_reader_role(cursor, target: PostgresPublishing) -> None:
    """The role BI tools log in as: created when missing, its password (when set) sent as a
    SCRAM verifier, so the clear text never reaches the server or its logs; it reads the
    served schema by default, read-only, and may create nothing in the public schema."""
    role = sql.Identifier(target.reader_role)
    cursor.execute("select 1 from pg_roles where rolname = %s", [target.reader_role])
    if cursor.fetchone() is None:
        cursor.execute(sql.SQL("create role {} login").format(role))
    if target.reader_password:
        verifier = psycopg2.extensions.encrypt_password(
            target.reader_password, target.reader_role, cursor.connection, "scram-sha-256"
        )
        cursor.execute(sql.SQL("alter role {} password {}").format(role, sql.Literal(verifier)))
    # Only what is missing: a role made beforehand by a DBA needs no more rights from us.
    cursor.execute(
        "select coalesce(setconfig, '{}') from pg_roles left join pg_db_role_setting "
        "on setrole = pg_roles.oid and setdatabase = 0 where rolname = %s",
        [target.reader_role],
    )
    configured = cursor.fetchone()[0]
    # As PostgreSQL keeps them (the schema's name needs no quotes: settings.py checks it).
    for name, value in {
        "search_path": target.schema,
        "default_transaction_read_only": "on",
    }.items():
        if f"{name}={value}" not in configured:
            cursor.execute(
                sql.SQL("alter role {} set {} = {}").format(
                    role, sql.Identifier(name), sql.Identifier(value)
                )
            )
    cursor.execute(
        "select has_database_privilege(%s, current_database(), 'connect')", [target.reader_role]
    )
    if not cursor.fetchone()[0]:
        cursor.execute(
            sql.SQL("grant connect on database {} to {}").format(
                sql.Identifier(cursor.connection.info.dbname), role
            )
        )
    # A right to create in the public schema granted to the role is taken back (one granted to
    # PUBLIC, which PostgreSQL 15 no longer makes by default, is the DBA's to take back).
    cursor.execute(
        "select case when to_regnamespace('public') is not null "
        "then has_schema_privilege(%s, 'public', 'create') end",
        [target.reader_role],
    )
    if cursor.fetchone()[0]:
        cursor.execute(sql.SQL("revoke create on schema public from {}").format(role))


def grant_reading(cursor, schema: str, reader_role: str) -> None:
    """The reader may enter `schema` and read every table made in it, now or later (default
    privileges of the schema, set before its tables are made)."""
    names = {"schema": sql.Identifier(schema), "role": sql.Identifier(reader_role)}
    cursor.execute(sql.SQL("grant usage on schema {schema} to {role}").format(**names))
    cursor.execute(
        sql.SQL("alter default privileges in schema {schema} grant select on tables to {role}")
        .format(**names)
    )  # fmt: skip


def _swap(cursor, served: str, loading: str) -> int:
    """Renames `served` away, `loading` in its place and drops the old one; returns how many
    tries it took. Each try first takes every served table's lock at once, waiting at most
    SWAP_LOCK_TIMEOUT, and gives them back (its savepoint rolled back) when a reader holds
    one, so readers go on; the publication tries again a little later."""
    deadline = time.monotonic() + SWAP_PATIENCE_SECONDS
    previous = sql.Identifier(f"{served}__previous")
    attempt = 0
    while True:
        attempt += 1
        cursor.execute("savepoint swap")
        try:
            cursor.execute("set local lock_timeout = %s", [SWAP_LOCK_TIMEOUT])
            relations = _served_relations(cursor, served)
            if relations:
                cursor.execute(
                    sql.SQL("lock table {} in access exclusive mode").format(
                        sql.SQL(", ").join(sql.Identifier(served, name) for name in relations)
                    )
                )
                _refuse_dependents(cursor, served)
                cursor.execute(
                    sql.SQL("alter schema {} rename to {}").format(sql.Identifier(served), previous)
                )
            cursor.execute(
                sql.SQL("alter schema {} rename to {}").format(
                    sql.Identifier(loading), sql.Identifier(served)
                )
            )
            cursor.execute(sql.SQL("drop schema if exists {} cascade").format(previous))
            cursor.execute("release savepoint swap")
            return attempt
        except errors.LockNotAvailable:
            cursor.execute("rollback to savepoint swap")
            if time.monotonic() > deadline:
                raise
            # Random, growing pauses: a steady stream of readers leaves a gap sooner or later.
            time.sleep(random.uniform(0.5, 1.0) * min(1.0, 0.05 * 2**attempt))


def _served_relations(cursor, served: str) -> list[str]:
    cursor.execute(
        "select c.relname from pg_class as c join pg_namespace as n on n.oid = c.relnamespace "
        "where n.nspname = %s and c.relkind in ('r', 'v', 'm', 'p', 'f') order by c.relname",
        [served],
    )
    return [name for (name,) in cursor.fetchall()]


def _refuse_dependents(cursor, served: str) -> None:
    """Views and other objects made outside the served schema on its tables would be dropped
    with it (or go on reading the old tables): refuse, naming them."""
    cursor.execute(
        """
        select distinct pg_describe_object(dependent.classid, dependent.objid, 0)
        from pg_depend as dependent
        join pg_class as served_table on served_table.oid = dependent.refobjid
        join pg_namespace as served_schema on served_schema.oid = served_table.relnamespace
        left join pg_rewrite as rule on dependent.classid = 'pg_rewrite'::regclass
            and rule.oid = dependent.objid
        left join pg_class as view on view.oid = rule.ev_class
        where dependent.refclassid = 'pg_class'::regclass
            and served_schema.nspname = %s
            and dependent.deptype = 'n'
            and coalesce(view.relnamespace, 0) <> served_schema.oid
        order by 1
        """,
        [served],
    )
    dependents = [name for (name,) in cursor.fetchall()]
    if dependents:
        raise ServedSchemaInUse(
            f"objects outside the schema {served} depend on it, and a publication replaces it "
            f"whole: {'; '.join(dependents)}. Query its tables directly, or drop them and make "
            "them again after each publication"
        )


def _latest_publication(duck: duckdb.DuckDBPyConnection) -> str | None:
    try:
        found = duck.execute(
            "select publication_id from main.publications order by publication_number desc limit 1"
        ).fetchone()
    except duckdb.CatalogException:
        return None
    return found[0] if found else None
