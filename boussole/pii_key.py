"""The pseudonymisation key (BOUSSOLE_PII_KEY): when a run may use it, and its continuity.

Pseudonyms are keyed hashes (dbt_project/macros/pii.sql): the same key must make every one of
them, or no pseudonym of an earlier build joins a later one. So the warehouse keeps a
fingerprint of the key its pseudonyms were made with (an HMAC of a fixed label: it does not
reveal the key), in ingestion.pii_key, and the publication copies it into the published mart
(table pii_key). A build with another key is refused, unless it rotates the key on purpose
(`boussole rotate-key`: a full refresh, which makes every pseudonym again under the new key).
A rotation that did not finish is recorded as such, and only a rotation to that key may run
until one does.

The public development key is refused for any landing folder other than the generated sample
(boussole/sample_data/marker.py), unless BOUSSOLE_ALLOW_DEVELOPMENT_KEY says so.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb

from boussole.sample_data.marker import not_the_sample
from boussole.settings import (
    ALLOW_DEVELOPMENT_KEY_VARIABLE,
    NEW_PII_KEY_HINT,
    PII_KEY_VARIABLE,
    Settings,
)
from boussole.sql import quote_identifier, table_exists

_FINGERPRINT_LABEL = b"boussole pseudonymisation key fingerprint"
KEY_TABLE = "ingestion.pii_key"
# The published mart's copy.
PUBLISHED_KEY_TABLE = "pii_key"
README_SECTION = "README, 'The pseudonymisation key'"


class KeyRefused(Exception):
    """The run may not pseudonymise with this key; the message says why and what to do."""


def fingerprint(key: str) -> str:
    return hmac.new(key.encode(), _FINGERPRINT_LABEL, hashlib.sha256).hexdigest()


def short(fingerprint_hex: str) -> str:
    """Enough of a fingerprint to tell keys apart in a message."""
    return fingerprint_hex[:12]


def development_key_refusal(settings: Settings) -> str | None:
    """Why a run may not use the settings' key on their landing folder (the public development
    key on anything but the generated sample), or None."""
    if not settings.uses_development_pii_key or settings.allow_development_key:
        return None
    why = not_the_sample(settings.landing_dir)
    if why is None:
        return None
    return (
        f"{PII_KEY_VARIABLE} is not set: personal data would be pseudonymised with the public "
        f"development key, which anyone can reverse, and the landing folder "
        f"{settings.landing_dir} is not the generated sample ({why}). Set {PII_KEY_VARIABLE} to "
        f"a random secret (for example from {NEW_PII_KEY_HINT}) and keep it: every later run "
        f"needs the same key. For development data only, {ALLOW_DEVELOPMENT_KEY_VARIABLE}=1 "
        "allows the public key."
    )


@dataclass(frozen=True)
class RecordedKey:
    fingerprint: str
    # A rotation to this key started and has not finished (a build failed or was killed).
    rotating: bool
    where: str
    in_warehouse: bool


@contextmanager
def reading_warehouse(settings: Settings) -> Iterator[duckdb.DuckDBPyConnection | None]:
    """The build warehouse, read-only, for a check made before a run; None when there is none
    yet or a run holds it (its dbt step checks then)."""
    try:
        conn = (
            duckdb.connect(str(settings.build_warehouse_path), read_only=True)
            if settings.build_warehouse_path.exists()
            else None
        )
    except duckdb.IOException:
        conn = None
    try:
        yield conn
    finally:
        if conn is not None:
            conn.close()


def recorded_key(
    settings: Settings, warehouse: duckdb.DuckDBPyConnection | None
) -> RecordedKey | None:
    """The key the pseudonyms were made with: the build warehouse's (`warehouse` reads it),
    else the served mart's (a warehouse made again beside it), else None (nothing built yet)."""
    if warehouse is not None and table_exists(warehouse, KEY_TABLE):
        row = warehouse.execute(f"select fingerprint, rotating from {KEY_TABLE}").fetchone()
        if row is not None:
            where = f"in the build warehouse {settings.build_warehouse_path}"
            return RecordedKey(row[0], row[1], where, in_warehouse=True)
    published: Path = settings.published_mart_path
    if published.exists():
        with duckdb.connect(str(published), read_only=True) as conn:
            in_mart = published_key_fingerprint(conn)
        if in_mart is not None:
            where = f"in the published mart {published}"
            return RecordedKey(in_mart, False, where, in_warehouse=False)
    return None


def published_key_fingerprint(mart: duckdb.DuckDBPyConnection) -> str | None:
    """The fingerprint of the key the pseudonyms of the mart `mart` opens were made with."""
    if not table_exists(mart, PUBLISHED_KEY_TABLE):
        return None
    row = mart.execute(f"select fingerprint from {PUBLISHED_KEY_TABLE}").fetchone()
    return row[0] if row else None


def key_refusal(
    settings: Settings, warehouse: duckdb.DuckDBPyConnection | None, rotating: bool = False
) -> str | None:
    """Why a build of the warehouse (`warehouse` reads it) may not pseudonymise with the
    settings' key, or None. `rotating`: the build rotates the key on purpose."""
    refused = development_key_refusal(settings)
    if refused:
        return refused
    recorded = recorded_key(settings, warehouse)
    current = fingerprint(settings.pii_key)
    if recorded is None or rotating:
        return None
    if recorded.rotating:
        this_one = "this key" if recorded.fingerprint == current else "another key"
        return (
            f"A rotation of the pseudonymisation key to {this_one} (fingerprint "
            f"{short(recorded.fingerprint)}) did not finish: the warehouse may hold pseudonyms "
            f"made with either key. Run `boussole rotate-key` with {PII_KEY_VARIABLE} set to the "
            f"key it rotates to ({README_SECTION})."
        )
    if recorded.fingerprint == current:
        return None
    return (
        f"{PII_KEY_VARIABLE} is not the key the pseudonyms were made with (fingerprint "
        f"{short(recorded.fingerprint)}, recorded {recorded.where}; this key's is "
        f"{short(current)}). A build with it would change every pseudonym (the *_hash columns): "
        "none would join those already built and published, and the history of contacts, "
        f"requesters and owners would break. Set {PII_KEY_VARIABLE} back to that key, or, to "
        "move to this key on purpose, run `boussole rotate-key`, which makes every pseudonym "
        f"again under it ({README_SECTION})."
    )


def claim_key(settings: Settings, warehouse: duckdb.DuckDBPyConnection, rotating: bool) -> str:
    """Before a build writes pseudonyms into the warehouse (`warehouse`, read-write): raises
    KeyRefused when it may not, else records the key's fingerprint (rotating, for a rotation,
    until finish_rotation). Returns what was done, for the log."""
    refused = key_refusal(settings, warehouse, rotating)
    if refused:
        raise KeyRefused(refused)
    recorded = recorded_key(settings, warehouse)
    current = fingerprint(settings.pii_key)
    unchanged = recorded is not None and recorded.fingerprint == current and not rotating
    if unchanged and recorded.in_warehouse:
        return f"pseudonyms made with the key of fingerprint {short(current)}, as before"
    _record(warehouse, current, rotating)
    if rotating:
        was = f" (was {short(recorded.fingerprint)})" if recorded else ""
        return f"rotating the pseudonymisation key to fingerprint {short(current)}{was}"
    return f"the key of fingerprint {short(current)} recorded in the build warehouse"


def publish_fingerprint(conn: duckdb.DuckDBPyConnection, build: str) -> None:
    """Into the mart being published (`conn`, where the build warehouse is attached as `build`):
    the fingerprint of the key its pseudonyms were made with, when the warehouse records one."""
    if table_exists(conn, KEY_TABLE, build):
        schema, table = KEY_TABLE.split(".")
        conn.execute(
            f"create table {quote_identifier('main', PUBLISHED_KEY_TABLE)} as "
            f"select fingerprint from {quote_identifier(build, schema, table)}"
        )


def finish_rotation(warehouse: duckdb.DuckDBPyConnection) -> None:
    """After a build of the whole project succeeded: every pseudonym is made with the recorded
    key."""
    if table_exists(warehouse, KEY_TABLE):
        warehouse.execute(f"update {KEY_TABLE} set rotating = false")


def _record(warehouse: duckdb.DuckDBPyConnection, current: str, rotating: bool) -> None:
    warehouse.execute("create schema if not exists ingestion")
    warehouse.execute(
        f"create table if not exists {KEY_TABLE} (fingerprint VARCHAR NOT NULL, "
        "rotating BOOLEAN NOT NULL, recorded_at TIMESTAMP WITH TIME ZONE NOT NULL)"
    )
    warehouse.execute("begin transaction")
    warehouse.execute(f"delete from {KEY_TABLE}")
    warehouse.execute(
        f"insert into {KEY_TABLE} values (?, ?, current_timestamp)", [current, rotating]
    )
    warehouse.execute("commit")
