"""The dbt project on PostgreSQL (`boussole postgres`): copy the ingested layer there, then
build with the profile's postgres target.

Ingestion writes the embedded DuckDB warehouse; the dbt project reads only its raw_* schemas
and the load manifest, so copying those tables is all PostgreSQL needs to build the same
models. The copy adds the files ingested since the last copy, and the dbt models stay
incremental there, as on DuckDB.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Mapping
from contextlib import closing
from pathlib import Path

import duckdb
import psycopg2
from psycopg2 import sql

from boussole.dbt_invocation import DbtInvocation, postgres_connection
from boussole.settings import Settings
from boussole.sql import quote_identifier

# DuckDB column types of the ingested tables and their PostgreSQL counterparts.
POSTGRES_TYPES = {
    "JSON": "jsonb",
    "VARCHAR": "text",
    "DATE": "date",
    "BIGINT": "bigint",
    "INTEGER": "integer",
    "DOUBLE": "double precision",
    "BOOLEAN": "boolean",
    "TIMESTAMP WITH TIME ZONE": "timestamptz",
    "TIMESTAMP": "timestamp",
    "SMALLINT": "smallint",
    "FLOAT": "real",
    # Wider than bigint: numeric holds them exactly.
    "HUGEINT": "numeric",
    "UBIGINT": "numeric",
}


def postgres_type(duckdb_type: str) -> str | None:
    """The PostgreSQL counterpart of a DuckDB column type (decimals and lists included), or
    None when there is none."""
    if duckdb_type in POSTGRES_TYPES:
        return POSTGRES_TYPES[duckdb_type]
    if decimal := re.fullmatch(r"DECIMAL\((\d+),(\d+)\)", duckdb_type):
        return f"numeric({decimal[1]},{decimal[2]})"
    if duckdb_type.endswith("[]"):
        element = postgres_type(duckdb_type.removesuffix("[]"))
        return element and f"{element}[]"
    return None


def postgres_columns(
    duck: duckdb.DuckDBPyConnection, schema: str, relation: str
) -> list[tuple[str, str, str]]:
    """(name, PostgreSQL type, DuckDB expression writing it as PostgreSQL reads it from CSV) of
    each column of a DuckDB table or view; raises when a type has no counterpart."""
    columns = duck.execute(
        "select column_name, data_type from duckdb_columns() "
        "where schema_name = ? and table_name = ? and database_name = current_database() "
        "order by column_index",
        [schema, relation],
    ).fetchall()
    unknown = [f"{name} {kind}" for name, kind in columns if postgres_type(kind) is None]
    if unknown:
        raise ValueError(f"{schema}.{relation}: no PostgreSQL type for {unknown}")
    return [(name, postgres_type(kind), _csv_expression(name, kind)) for name, kind in columns]


def _csv_expression(name: str, duckdb_type: str) -> str:
    column = quote_identifier(name)
    if not duckdb_type.endswith("[]"):
        return column
    # DuckDB writes a list as [a, b]; PostgreSQL reads arrays as {"a","b"}, elements quoted
    # and escaped, NULL bare.
    escaped = r"""replace(replace(x::varchar, '\', '\\'), '"', '\"')"""
    element = f"""coalesce('"' || {escaped} || '"', 'NULL')"""
    return (
        f"case when {column} is not null then "
        f"'{{' || array_to_string(list_transform({column}, lambda x: {element}), ',') || '}}' end"
    )


def create_table(cursor, target: sql.Composable, columns: list[tuple[str, str, str]]) -> None:
    cursor.execute(
        sql.SQL("create table if not exists {} ({})").format(
            target,
            sql.SQL(", ").join(
                sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(kind))
                for name, kind, _ in columns
            ),
        )
    )


def copy_rows(
    duck: duckdb.DuckDBPyConnection,
    cursor,
    source: str,
    columns: list[tuple[str, str, str]],
    target: sql.Composable,
    csv_path: Path,
    params: list | None = None,
    freeze: bool = False,
) -> int:
    """Copies the rows of the DuckDB query `source` (bound `params`) into the PostgreSQL table
    `target` through a CSV file at `csv_path`; returns how many. With `freeze` (a table made in
    this transaction), the rows are written frozen: visible to every snapshot once committed,
    even those taken before."""
    select = ", ".join(expression for _, _, expression in columns)
    duck.execute(
        f"copy (select {select} from ({source})) to ? (format csv, header true)",
        [*(params or []), str(csv_path)],
    )
    with csv_path.open(encoding="utf-8") as csv_file:
        cursor.copy_expert(
            sql.SQL("copy {} from stdin with (format csv, header true, freeze {})").format(
                target, sql.SQL("true" if freeze else "false")
            ),
            csv_file,
        )
    return cursor.rowcount


def ingested_tables(duck: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    """The tables dbt reads as sources: every raw_* table and the load manifest."""
    return duck.execute(
        """
        select schema_name, table_name
        from duckdb_tables()
        where starts_with(schema_name, 'raw_')
            or (schema_name = 'ingestion' and table_name = 'load_manifest')
        order by schema_name, table_name
        """
    ).fetchall()


def copy_ingested_tables(duck: duckdb.DuckDBPyConnection, dsn: str) -> dict[str, int]:
    """Copies the ingested tables from DuckDB into PostgreSQL (same schemas and names), in
    one transaction; returns the rows copied per table. A raw table gets the rows of the
    files it does not hold as DuckDB holds them (new files, and files whose rows changed: a
    delivery replaced, a record quarantined by hand), so a copy costs what changed since the
    last one; the small load manifest is copied whole, in its current shape."""
    copied: dict[str, int] = {}
    # closing() ends the connection; the connection's own block is the transaction.
    with (
        tempfile.TemporaryDirectory() as folder,
        closing(psycopg2.connect(dsn)) as connection,
        connection,
        connection.cursor() as cursor,
    ):
        for schema, table in ingested_tables(duck):
            columns = postgres_columns(duck, schema, table)
            target = sql.Identifier(schema, table)
            names = {name for name, _, _ in columns}
            cursor.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(schema)))
            if "_file_sha256" not in names:
                cursor.execute(sql.SQL("drop table if exists {}").format(target))
            create_table(cursor, target, columns)
            rows = f"select * from {quote_identifier(schema, table)}"
            held = []
            if "_file_sha256" in names:
                held = [_files_held_alike(duck, cursor, schema, table)]
                rows += " where _file_sha256 not in (select unnest(?::varchar[]))"
            csv_path = Path(folder) / f"{schema}.{table}.csv"
            copied[f"{schema}.{table}"] = copy_rows(
                duck, cursor, rows, columns, target, csv_path, held
            )
    return copied


def _files_held_alike(
    duck: duckdb.DuckDBPyConnection, cursor, schema: str, table: str
) -> list[str]:
    """The files whose rows PostgreSQL holds as DuckDB does (same count, paths and record
    numbers); the rows of the others are deleted from PostgreSQL, to be copied again."""
    summary = (
        "select _file_sha256, count(*), min(_source_file), max(_source_file), "
        "sum(_record_number) from {} group by _file_sha256"
    )
    target = sql.Identifier(schema, table)
    cursor.execute(sql.SQL(summary).format(target))
    copied = {sha: tuple(map(str, rest)) for sha, *rest in cursor.fetchall()}
    current = {
        sha: tuple(map(str, rest))
        for sha, *rest in duck.execute(summary.format(quote_identifier(schema, table))).fetchall()
    }
    stale = [sha for sha, rest in copied.items() if current.get(sha) != rest]
    if stale:
        cursor.execute(
            sql.SQL("delete from {} where _file_sha256 = any(%s)").format(target), [stale]
        )
    return [sha for sha in copied if sha not in stale]


def build_on_postgres(settings: Settings, dbt_args: list[str], environ: Mapping[str, str]) -> int:
    """Copies the ingested tables of the build warehouse, then runs dbt with `dbt_args` on
    the postgres target, with the settings of a pipeline run (figures as of the latest extract
    loaded). Returns dbt's exit status."""
    parameters = postgres_connection(environ)
    with duckdb.connect(str(settings.build_warehouse_path), read_only=True) as duck:
        invocation = DbtInvocation.as_of_warehouse(
            settings, duck, target="postgres", postgres=parameters
        )
        copied = copy_ingested_tables(duck, psycopg2.extensions.make_dsn(**parameters))
    print(
        f"Copied {len(copied)} ingested tables ({sum(copied.values()):,} rows) to PostgreSQL "
        f"{parameters['host']}:{parameters['port']}/{parameters['dbname']}",
        flush=True,
    )
    return invocation.run(*dbt_args, target_path=invocation.new_target_path()).returncode
