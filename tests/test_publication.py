"""Publishing swaps a complete new file over the served mart, or leaves it untouched."""

import hashlib
import shutil

import dagster as dg
import duckdb
import pytest

from boussole.publication import publish_marts
from orchestration.assets.publication import audited_runs


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


# An incremental model's table as dbt's delete+insert leaves it: one row per session, stamped
# with the time of the build that wrote it.
SESSIONS = {"fct_sessions": ("session_key",)}


def build_sessions(path, rows):
    with duckdb.connect(str(path)) as conn:
        conn.execute("create schema if not exists marts")
        conn.execute(
            "create or replace table marts.fct_sessions (session_key varchar, pages integer, "
            "_transformed_at timestamp with time zone)"
        )
        conn.executemany("insert into marts.fct_sessions values (?, ?, ?::timestamptz)", rows)


def published_rows(path):
    with duckdb.connect(str(path), read_only=True) as conn:
        return conn.execute(
            "select * exclude (_transformed_at) from fct_sessions order by 1"
        ).fetchall()


def blocks(path):
    """Used and free blocks of a DuckDB file."""
    with duckdb.connect(str(path), read_only=True) as conn:
        return conn.execute(
            "select used_blocks, free_blocks from pragma_database_size()"
        ).fetchone()


FIRST_BUILD = [(f"s{n}", n, "2026-01-01 02:00+00") for n in range(1, 7)]
NEW_SESSION = ("s7", 7, "2026-01-02 02:00+00")


def test_an_incremental_table_is_published_by_the_rows_its_build_wrote(tmp_path):
    build, target = tmp_path / "build.duckdb", tmp_path / "boussole.duckdb"
    build_sessions(build, FIRST_BUILD)
    first = publish_marts(build, target, incremental_keys=SESSIONS)
    assert first.rows_changed == {}  # nothing served yet: copied whole

    # The next build rewrote s2 (a late page) and added s7, as delete+insert does.
    rewritten = ("s2", 20, "2026-01-02 02:00+00")
    build_sessions(build, [rewritten if row[0] == "s2" else row for row in FIRST_BUILD])
    with duckdb.connect(str(build)) as conn:
        conn.execute("insert into marts.fct_sessions values (?, ?, ?::timestamptz)", NEW_SESSION)
    second = publish_marts(build, target, incremental_keys=SESSIONS)

    assert second.rows_changed == {"fct_sessions": 2}
    assert second.row_counts == {"fct_sessions": 7}
    assert published_rows(target) == [
        ("s1", 1),
        ("s2", 20),
        ("s3", 3),
        ("s4", 4),
        ("s5", 5),
        ("s6", 6),
        ("s7", 7),
    ]


def test_an_incremental_table_mostly_rewritten_is_copied_whole(tmp_path):
    """A full refresh stamps every row again: copying beats replacing each row."""
    build, target = tmp_path / "build.duckdb", tmp_path / "boussole.duckdb"
    build_sessions(build, FIRST_BUILD)
    publish_marts(build, target, incremental_keys=SESSIONS)

    build_sessions(
        build, [(key, pages * 10, "2026-01-02 02:00+00") for key, pages, _ in FIRST_BUILD]
    )
    published = publish_marts(build, target, incremental_keys=SESSIONS)

    assert published.rows_changed == {}
    assert published_rows(target) == [(f"s{n}", n * 10) for n in range(1, 7)]
    # Not a copy of the served file whose table was replaced: no space left behind.
    fresh = publish_marts(build, tmp_path / "fresh.duckdb").path
    assert blocks(target) == blocks(fresh)


def test_an_incremental_table_is_copied_whole_when_its_changes_do_not_reconcile(tmp_path):
    build, target = tmp_path / "build.duckdb", tmp_path / "boussole.duckdb"
    build_sessions(build, FIRST_BUILD)
    publish_marts(build, target, incremental_keys=SESSIONS)

    # s3 left without a newer stamp (deleted by hand, not by delete+insert); s7 came in.
    build_sessions(build, [row for row in FIRST_BUILD if row[0] != "s3"] + [NEW_SESSION])
    published = publish_marts(build, target, incremental_keys=SESSIONS)

    assert published.rows_changed == {}
    assert published_rows(target) == [
        ("s1", 1),
        ("s2", 2),
        ("s4", 4),
        ("s5", 5),
        ("s6", 6),
        ("s7", 7),
    ]


def test_an_incremental_table_is_copied_whole_against_an_older_build_warehouse(tmp_path):
    """A build warehouse restored from a backup older than the served mart: the copy holds
    versions of rows the build does not (same row count), so its changes cannot apply."""
    build, target = tmp_path / "build.duckdb", tmp_path / "boussole.duckdb"
    build_sessions(build, FIRST_BUILD)
    backup = tmp_path / "backup.duckdb"
    shutil.copy(build, backup)
    rewritten = ("s2", 20, "2026-01-02 02:00+00")
    build_sessions(build, [rewritten if row[0] == "s2" else row for row in FIRST_BUILD])
    publish_marts(build, target, incremental_keys=SESSIONS)

    shutil.copy(backup, build)
    with duckdb.connect(str(build)) as conn:
        conn.execute("insert into marts.fct_sessions values ('s7', 7, '2026-01-03 02:00+00')")
    published = publish_marts(build, target, incremental_keys=SESSIONS)

    assert published.rows_changed == {}
    assert published_rows(target) == [(f"s{n}", n) for n in range(1, 8)]


def test_an_incremental_table_is_copied_whole_when_its_columns_changed(tmp_path):
    build, target = tmp_path / "build.duckdb", tmp_path / "boussole.duckdb"
    build_sessions(build, FIRST_BUILD)
    publish_marts(build, target, incremental_keys=SESSIONS)

    with duckdb.connect(str(build)) as conn:
        conn.execute("alter table marts.fct_sessions add column device varchar default 'mobile'")
        conn.execute("update marts.fct_sessions set _transformed_at = '2026-01-02 02:00+00'")
    published = publish_marts(build, target, incremental_keys=SESSIONS)

    assert published.rows_changed == {}
    with duckdb.connect(str(target), read_only=True) as conn:
        assert conn.execute("select distinct device from fct_sessions").fetchall() == [("mobile",)]


def test_a_publication_by_changes_keeps_nothing_else_of_the_served_mart(tmp_path):
    """The copy of the served file starts the new one: its other tables (a model since removed)
    and views must not survive into it, and the served file stays as it was until the swap."""
    build, target = tmp_path / "build.duckdb", tmp_path / "boussole.duckdb"
    build_sessions(build, FIRST_BUILD)
    with duckdb.connect(str(build)) as conn:
        conn.execute("create table marts.dropped_model as select 1 as x")
    publish_marts(build, target, incremental_keys=SESSIONS)
    with duckdb.connect(str(target)) as conn:
        conn.execute("create view served_view as select * from fct_sessions")
    with duckdb.connect(str(build)) as conn:
        conn.execute("drop table marts.dropped_model")
        conn.execute("insert into marts.fct_sessions values (?, ?, ?::timestamptz)", NEW_SESSION)

    published = publish_marts(build, target, incremental_keys=SESSIONS)

    assert published.rows_changed == {"fct_sessions": 1}
    with duckdb.connect(str(target), read_only=True) as conn:
        assert conn.execute(
            "select table_name from information_schema.tables order by 1"
        ).fetchall() == [("fct_sessions",)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["boussole.duckdb", "build.duckdb"]


def test_a_served_mart_mostly_free_space_is_written_afresh(tmp_path):
    """DuckDB never gives back the space of dropped tables and deleted rows: a served file
    left mostly free is not carried on but written again, compact."""
    build, target = tmp_path / "build.duckdb", tmp_path / "boussole.duckdb"
    build_sessions(build, FIRST_BUILD)
    publish_marts(build, target, incremental_keys=SESSIONS)
    with duckdb.connect(str(target)) as conn:
        conn.execute(
            "create table filler as select range as n, md5(range::varchar) from range(300000)"
        )
        conn.execute("checkpoint")
        # Written after it, so that the filler's blocks are inside the file, not at its end.
        conn.execute("create table tail as select range as n from range(100000)")
        conn.execute("checkpoint")
        conn.execute("drop table filler")
        conn.execute("checkpoint")
        free, total = conn.execute(
            "select free_blocks, total_blocks from pragma_database_size()"
        ).fetchone()
    assert free > total / 2
    loose_size = target.stat().st_size
    with duckdb.connect(str(build)) as conn:
        conn.execute("insert into marts.fct_sessions values (?, ?, ?::timestamptz)", NEW_SESSION)

    published = publish_marts(build, target, incremental_keys=SESSIONS)

    assert published.rows_changed == {}
    assert target.stat().st_size < loose_size / 2
    assert published_rows(target) == [(f"s{n}", n) for n in range(1, 8)]


def test_a_reexecution_counts_the_runs_it_reexecutes_back_to_the_build():
    with dg.DagsterInstance.ephemeral() as instance:
        # "retry" re-executes "built", "again" re-executes "retry"; "other" is another run.
        for run_id, parent in [("built", None), ("retry", "built"), ("again", "retry")]:
            instance.add_run(
                dg.DagsterRun(
                    job_name="boussole_pipeline",
                    run_id=run_id,
                    parent_run_id=parent,
                    root_run_id=parent and "built",
                )
            )
        assert audited_runs(instance, "again", "built") == ["again", "retry", "built"]
        assert audited_runs(instance, "retry", "built") == ["retry", "built"]
        assert audited_runs(instance, "built", "built") == ["built"]
        assert audited_runs(instance, "again", "retry") == ["again", "retry"]
        # Another run built the warehouse since, or no build is recorded: the run's own checks.
        assert audited_runs(instance, "again", "other") == ["again"]
        assert audited_runs(instance, "again", None) == ["again"]
