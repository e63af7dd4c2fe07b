"""Connections to what the pipeline reads and writes, as Dagster resources."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb


class WarehouseResource(dg.ConfigurableResource):
    """The DuckDB build warehouse. Only the pipeline opens it; BI reads the published copy."""

    path: str

    @property
    def path_obj(self) -> Path:
        return Path(self.path)

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        conn = duckdb.connect(self.path, read_only=read_only)
        try:
            yield conn
        finally:
            conn.close()


class LandingResource(dg.ConfigurableResource):
    """The landing folder: <landing>/<source>/<extract_date>/<object>.<ext>."""

    path: str

    @property
    def directory(self) -> Path:
        return Path(self.path)
