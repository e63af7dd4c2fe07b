"""Publishing swaps a complete new file over the served mart, or leaves it untouched."""

import hashlib

import duckdb
import pytest

from boussole.publication import publish_marts


def build_warehouse(path, revenue):
    conn = duckdb.connect(str(path))
    conn.execute("create schema marts")
    conn.execute("create schema staging")
    conn.execute(f"create table marts.kpi_values as select 'revenue' as kpi_id, {revenue} as value")
    conn.execute("create table staging.not_published as select 1 as x")
    conn.close()


def test_publish_copies_the_marts_only(tmp_path):
    build = tmp_path / "build.duckdb"
    build_warehouse(build, 100)
    published = publish_marts(build, tmp_path / "pub" / "boussole.duckdb")

    assert published.row_counts == {"kpi_values": 1}
    conn = duckdb.connect(str(published.path), read_only=True)
    assert conn.execute("select kpi_id, value from kpi_values").fetchall() == [("revenue", 100)]
    assert conn.execute(
        "select count(*) from information_schema.tables where table_name = 'not_published'"
    ).fetchone() == (0,)
    conn.close()
    assert list((tmp_path / "pub").iterdir()) == [published.path]  # no temporary file left


def test_a_reader_keeps_its_snapshot_while_the_mart_is_replaced(tmp_path):
    build = tmp_path / "build.duckdb"
    target = tmp_path / "boussole.duckdb"
    build_warehouse(build, 100)
    publish_marts(build, target)
    reader = duckdb.connect(str(target), read_only=True)

    build.unlink()
    build_warehouse(build, 250)
    publish_marts(build, target)

    assert reader.execute("select value from kpi_values").fetchone() == (100,)
    reader.close()
    fresh = duckdb.connect(str(target), read_only=True)
    assert fresh.execute("select value from kpi_values").fetchone() == (250,)
    fresh.close()


def test_a_failed_publication_leaves_the_served_file_unchanged(tmp_path):
    build = tmp_path / "build.duckdb"
    target = tmp_path / "boussole.duckdb"
    build_warehouse(build, 100)
    publish_marts(build, target)
    before = hashlib.sha256(target.read_bytes()).hexdigest()

    with pytest.raises(duckdb.Error):
        publish_marts(tmp_path / "missing" / "build.duckdb", target)

    assert hashlib.sha256(target.read_bytes()).hexdigest() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["boussole.duckdb", "build.duckdb"]


def test_paths_and_names_reach_duckdb_as_parameters_and_quoted_identifiers(tmp_path):
    """A data folder whose path holds a quote and a space (string-formatted SQL broke on it,
    and could be injected), and a table whose name holds a quote."""
    folder = tmp_path / "l'entrepôt de données"
    folder.mkdir()
    build = folder / "build.duckdb"
    build_warehouse(build, 100)
    with duckdb.connect(str(build)) as conn:
        conn.execute('create table marts."it\'s ""odd""" as select 1 as x')
    published = publish_marts(build, folder / "pub lié" / "boussole.duckdb")

    assert published.row_counts == {"kpi_values": 1, 'it\'s "odd"': 1}
    with duckdb.connect(str(published.path), read_only=True) as conn:
        assert conn.execute('select x from "it\'s ""odd"""').fetchall() == [(1,)]
