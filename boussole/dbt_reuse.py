"""What a dbt build of the warehouse can reuse instead of rebuilding: the views and the
reference models whose definition has not changed since the last successful build.

A view reads its inputs each time it is queried, and a reference model (dbt tag `reference`:
the calendar, the KPI catalogue, the seeds) is built from the project alone. Rebuilding either
gives the same relation unless its definition or the settings it is compiled with changed.
After each successful build, its manifest and a digest of its settings are kept beside the
warehouse; the next build compares its project with them (dbt's `state:unmodified`) and
leaves the unchanged ones out. Their tests still run: the data behind a view changes daily.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from graphlib import TopologicalSorter
from importlib.metadata import version
from pathlib import Path

import duckdb

MANIFEST = "manifest.json"
SETTINGS_DIGEST = "settings.sha256"
REUSABLE_NODES = "config.materialized:view,state:unmodified tag:reference,state:unmodified"
# The as-of date (read by dbt_project/macros/kpi/catalogue.sql when a model runs): it changes
# from run to run, but no view or reference model reads it.
AS_OF_DATE_VARIABLE = "BOUSSOLE_AS_OF_DATE"
# The dbt profile's path of the DuckDB warehouse (dbt_project/profiles.yml).
WAREHOUSE_VARIABLE = "BOUSSOLE_WAREHOUSE_PATH"


def settings_digest(dbt_vars: Mapping[str, object], dbt_env: Mapping[str, str]) -> str:
    """The settings models are compiled with (vars, PII key, warehouse) and the versions of
    dbt and its adapter, as one digest: if any changed, nothing is reused. Of the warehouse,
    only its catalog name (the file's stem) counts, which views name in their SQL: a data
    folder moved elsewhere keeps what it holds. The as-of date is left out."""
    env = {name: value for name, value in dbt_env.items() if name != AS_OF_DATE_VARIABLE}
    if WAREHOUSE_VARIABLE in env:
        env[WAREHOUSE_VARIABLE] = Path(env[WAREHOUSE_VARIABLE]).stem
    settings = {
        "vars": dict(dbt_vars),
        "env": env,
        "dbt-core": version("dbt-core"),
        "dbt-duckdb": version("dbt-duckdb"),
    }
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class Reuse:
    """The dbt arguments of a build, and why nothing is reused when they are empty."""

    dbt_args: list[str]
    reason: str


def reusable_relations(manifest: Mapping) -> set[tuple[str, str]]:
    """(schema, name) of the nodes a build may reuse, as a manifest records them."""
    return {
        (node["schema"].lower(), (node.get("alias") or node["name"]).lower())
        for node in manifest["nodes"].values()
        if node["resource_type"] in ("model", "seed")
        and (node["config"].get("materialized") == "view" or "reference" in node["tags"])
    }


def plan_reuse(previous: Path | None, digest: str, conn: duckdb.DuckDBPyConnection) -> Reuse:
    """Reuse the unchanged views and reference models of the build recorded in `previous`,
    if it was made with the same settings and its relations are all in the warehouse."""
    if previous is None or not (previous / MANIFEST).exists():
        return Reuse([], "no earlier successful build of this warehouse is recorded")
    if (previous / SETTINGS_DIGEST).read_text().strip() != digest:
        return Reuse([], "the settings or dbt's version changed since the last build")
    expected = reusable_relations(json.loads((previous / MANIFEST).read_text()))
    present = {
        (schema.lower(), name.lower())
        for schema, name in conn.execute(
            "select table_schema, table_name from information_schema.tables"
        ).fetchall()
    }
    missing = sorted(f"{schema}.{name}" for schema, name in expected - present)
    if missing:
        return Reuse([], f"relations of the last build are missing: {', '.join(missing)}")
    dbt_args = ["--state", str(previous), "--exclude", REUSABLE_NODES]
    # Tests are selected for themselves, not through their models: those of reused
    # relations run too.
    return Reuse([*dbt_args, "--indirect-selection", "empty"], "")


@contextmanager
def claimed_state(directory: Path) -> Iterator[Path | None]:
    """The recorded state, moved aside for the length of a build: if the build fails or is
    interrupted, no state is left, and the next build rebuilds everything."""
    in_use = directory.with_name(directory.name + ".in_use")
    shutil.rmtree(in_use, ignore_errors=True)
    if directory.exists():
        directory.rename(in_use)
    try:
        yield in_use if in_use.exists() else None
    finally:
        shutil.rmtree(in_use, ignore_errors=True)


def _parents(nodes: Mapping[str, Mapping]) -> dict[str, list[str]]:
    """The nodes each node depends on (sources left out)."""
    return {
        unique_id: [parent for parent in node["depends_on"].get("nodes", []) if parent in nodes]
        for unique_id, node in nodes.items()
    }


def models_in_order(manifest: Mapping) -> list[str]:
    """The models and seeds of the manifest, each after those it depends on."""
    nodes = manifest["nodes"]
    return [
        unique_id
        for unique_id in TopologicalSorter(_parents(nodes)).static_order()
        if nodes[unique_id]["resource_type"] in ("model", "seed")
    ]


def reused_nodes(manifest: Mapping, run_results: Mapping) -> list[Mapping]:
    """The models and seeds of the project that a build left out, in dependency order."""
    built = {result["unique_id"] for result in run_results["results"]}
    return [
        manifest["nodes"][unique_id]
        for unique_id in models_in_order(manifest)
        if unique_id not in built
    ]


def upstream_nodes(manifest: Mapping) -> Callable[[str], frozenset[str]]:
    """The function giving every node upstream of a node of the manifest."""
    parents = _parents(manifest["nodes"])

    @cache
    def upstream(unique_id: str) -> frozenset[str]:
        return frozenset(parents[unique_id]).union(*(upstream(p) for p in parents[unique_id]))

    return upstream


def record_state(directory: Path, manifest: Path, digest: str) -> None:
    """Keep the manifest of a successful build of every node, and its settings digest."""
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(manifest, directory / MANIFEST)
    (directory / SETTINGS_DIGEST).write_text(digest + "\n")
