"""SQL text from names: values go to DuckDB and PostgreSQL as bound parameters, and the names
that cannot be parameters (schemas, tables) as quoted identifiers, never as raw text."""

import duckdb


def quote_identifier(*parts: str) -> str:
    """schema.table (or any dotted name) as quoted identifiers: `"a""b"."c"`."""
    return ".".join('"' + part.replace('"', '""') + '"' for part in parts)


def table_exists(conn: duckdb.DuckDBPyConnection, qualified: str, database: str = "") -> bool:
    """Whether schema.table (`qualified`; a bare name is in main) exists in `database` (by
    default, the connection's own)."""
    schema, _, table = qualified.rpartition(".")
    return conn.execute(
        "select count(*) from duckdb_tables() where schema_name = ? and table_name = ? "
        "and database_name = coalesce(nullif(?, ''), current_database())",
        [schema or "main", table, database],
    ).fetchone()[0]
