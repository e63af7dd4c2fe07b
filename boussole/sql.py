"""SQL text from names: values go to DuckDB and PostgreSQL as bound parameters, and the names
that cannot be parameters (schemas, tables) as quoted identifiers, never as raw text."""


def quote_identifier(*parts: str) -> str:
    """schema.table (or any dotted name) as quoted identifiers: `"a""b"."c"`."""
    return ".".join('"' + part.replace('"', '""') + '"' for part in parts)
