"""The pseudonymisation key through whole runs: written in no file a run leaves, and rotated by
`boussole rotate-key` so that every pseudonym is made again under the new key."""

import hashlib
import json
import subprocess
from pathlib import Path

import duckdb
import pytest

from boussole.pii_key import fingerprint
from tests.conftest import BOUSSOLE, PROJECT_ROOT, copy_workspace

# Reads the shared run on landing_small (conftest small_pipeline), and runs on from a copy;
# each test wherever a worker is free.
pytestmark = [pytest.mark.e2e, pytest.mark.apart]

NEW_KEY = "pR3-wY8tLk1qZn6vXc0bHs5j"


def files_holding(text: str, *roots: Path) -> list[Path]:
    """Every file under `roots` whose bytes hold `text` (DuckDB files, dbt's msgpack and logs
    included), and how many files were read."""
    needle = text.encode()
    found, read = [], 0
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file() and not path.is_symlink():
                read += 1
                if needle in path.read_bytes():
                    found.append(path)
    assert read > 0
    return found


def test_no_file_a_run_writes_holds_the_key(small_pipeline):
    workspace, _ = small_pipeline
    key = workspace.env["BOUSSOLE_PII_KEY"]
    roots = (workspace.data, workspace.dagster_home, PROJECT_ROOT / "dbt_project")
    assert files_holding(key, *roots) == []
    # The scan reads where the key used to be written: the SQL dbt compiled for the models that
    # pseudonymise, which now reads it from the session.
    compiled = list((workspace.data / "dbt" / "duckdb").rglob("staging/crm/stg_crm__contacts.sql"))
    assert compiled and all(
        "getvariable('boussole_pii_key')" in path.read_text() for path in compiled
    )


def keyed_hash(key: str, value: str) -> str:
    return hashlib.sha256(f"{key}|{value}".encode()).hexdigest()


def test_rotate_key_makes_every_pseudonym_again_and_refuses_the_old_key(small_pipeline, tmp_path):
    shared, _ = small_pipeline
    old_key = shared.env["BOUSSOLE_PII_KEY"]
    # A data folder whose path holds a quote and a space: every path reaches DuckDB quoted or
    # bound (the whole pipeline runs on it).
    workspace = copy_workspace(shared, tmp_path / "l'entrepôt copié")
    with duckdb.connect(str(shared.published), read_only=True) as conn:
        kpis_before = conn.execute("select * from kpi_values order by all").fetchall()
    # Requesters of tickets 1 and 2, at a domain of no CRM company: their pseudonyms show in
    # fct_tickets.requester_hash.
    users = workspace.landing / "support" / "2026-02-02" / "users.jsonl"
    users.write_text(
        "".join(
            json.dumps({"id": id_, "email": email, "role": "end-user"}) + "\n"
            for id_, email in ((9001, " Lea.Roux@Example.org"), (9002, "tom.blanc@example.org"))
        )
    )

    rotated = subprocess.run(
        [str(BOUSSOLE), "rotate-key"],
        env={**workspace.env, "BOUSSOLE_PII_KEY": NEW_KEY},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert rotated.returncode == 0, rotated.stdout + rotated.stderr
    assert (
        f"Making every pseudonym again with the key of fingerprint {fingerprint(NEW_KEY)[:12]} "
        f"(recorded: {fingerprint(old_key)[:12]})" in rotated.stdout
    )

    with duckdb.connect(str(workspace.published), read_only=True) as conn:
        assert conn.execute("select fingerprint from pii_key").fetchall() == [
            (fingerprint(NEW_KEY),)
        ]
        hashes = conn.execute(
            "select ticket_id, requester_hash from fct_tickets order by ticket_id"
        ).fetchall()
        assert conn.execute("select * from kpi_values order by all").fetchall() == kpis_before
    assert hashes == [
        (1, keyed_hash(NEW_KEY, "lea.roux@example.org")),
        (2, keyed_hash(NEW_KEY, "tom.blanc@example.org")),
        (3, None),
        (4, None),
        (5, None),
    ]
    with duckdb.connect(str(workspace.data / "build" / "warehouse.duckdb"), read_only=True) as conn:
        assert conn.execute("select fingerprint, rotating from ingestion.pii_key").fetchall() == [
            (fingerprint(NEW_KEY), False)
        ]
    # The publication history says which key each publication's pseudonyms were made with.
    history = workspace.data / "history" / "publications.duckdb"
    with duckdb.connect(str(history), read_only=True) as conn:
        assert conn.execute(
            "select pii_key_fingerprint from publications order by publication_number"
        ).fetchall() == [(fingerprint(old_key),), (fingerprint(NEW_KEY),)]
    assert files_holding(NEW_KEY, workspace.data, workspace.dagster_home) == []

    # The old key is now the other one: refused before Dagster starts, saying why.
    old = subprocess.run(
        [str(BOUSSOLE), "run"], env=workspace.env, capture_output=True, text=True, timeout=300
    )
    assert old.returncode == 2
    assert "is not the key the pseudonyms were made with" in old.stderr
    assert fingerprint(NEW_KEY)[:12] in old.stderr and "boussole rotate-key" in old.stderr
