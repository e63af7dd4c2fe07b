"""The KPI dashboard: the Evidence project in dashboard/ built into a static site from the
published mart (see docs/dashboard.md).

Evidence reads its data through @duckdb/node-api 1.4, which cannot open a file written by
DuckDB 2.0 (the mart's: "version number 999, we can only read versions between 64 and 67").
So each build first copies the tables the dashboard reads into a file written in the storage
format of DuckDB 1.4, in a private copy of the project, then runs `evidence sources` (the
source queries, into the files the site loads) and `evidence build` (the static site) there, and
swaps the new site over the served one. The site loads nothing from the network: the charts,
DuckDB-WASM and the data are all in it (dashboard/offline-patch.mjs keeps DuckDB-WASM from
downloading its Parquet reader), and Evidence's usage statistics are off
(dashboard/evidence.settings.json, which its CLI reads from the project folder).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import duckdb

from boussole.settings import PROJECT_ROOT
from boussole.sql import quote_identifier

DASHBOARD_PROJECT = PROJECT_ROOT / "dashboard"
# What a build copies of the project beside node_modules (linked, not copied).
PROJECT_ENTRIES = (
    "package.json",
    "evidence.config.yaml",
    "evidence.settings.json",
    "pages",
    "components",
    "partials",
    "sources",
)
SOURCE_NAME = "boussole"
# The published tables the source queries (dashboard/sources/boussole/*.sql) read.
DASHBOARD_TABLES = (
    "kpi_values",
    "kpi_catalogue",
    "kpi_value_history",
    "kpi_restatements",
    "quality_results",
    "kpi_anomalies",
    "alerts",
    "publications",
)
# The newest storage format the DuckDB of @duckdb/node-api 1.4 (package-lock.json) opens.
EVIDENCE_STORAGE_VERSION = "v1.4.0"
BUILD_TIMEOUT_SECONDS = 900


class DashboardUnavailable(RuntimeError):
    """Node.js or the dashboard's npm packages are missing: the message says what to do."""


class DashboardBuildFailed(RuntimeError):
    """A step of the Evidence build failed; the message holds the end of its output."""


@dataclass(frozen=True)
class BuiltDashboard:
    site: Path
    pages: int
    seconds: float


def site_path(data_dir: Path) -> Path:
    return data_dir / "dashboard" / "site"


def missing_requirements(project: Path = DASHBOARD_PROJECT) -> str | None:
    """Why the dashboard cannot be built on this machine, or None when it can."""
    if shutil.which("node") is None:
        return "Node.js is not installed (Node 20 or later is needed to build the dashboard)"
    if not (project / "node_modules" / "@evidence-dev" / "evidence").is_dir():
        return f"the dashboard's npm packages are not installed: run `npm ci` in {project}"
    return None


def export_for_evidence(published: Path, target: Path) -> None:
    """Copy the tables the dashboard reads from the published mart into `target`, in a storage
    format Evidence's DuckDB opens."""
    target.unlink(missing_ok=True)
    with duckdb.connect() as conn:
        conn.execute("attach ? as mart (read_only)", [str(published)])
        present = {
            row[0]
            for row in conn.execute(
                "select table_name from information_schema.tables where table_catalog = 'mart'"
            ).fetchall()
        }
        missing = [table for table in DASHBOARD_TABLES if table not in present]
        if missing:
            raise DashboardBuildFailed(
                f"{published} lacks the table(s) {', '.join(missing)}: publish through "
                "`boussole run` (it publishes the history, quality results and alerts)"
            )
        conn.execute(
            f"attach ? as evidence (storage_version '{EVIDENCE_STORAGE_VERSION}')", [str(target)]
        )
        for table in DASHBOARD_TABLES:
            conn.execute(
                f"create table {quote_identifier('evidence', 'main', table)} as "
                f"select * from {quote_identifier('mart', 'main', table)}"
            )
        conn.execute("detach evidence")


def _prepare_project(work: Path, project: Path) -> None:
    work.mkdir(parents=True)
    for entry in PROJECT_ENTRIES:
        source = project / entry
        if source.is_dir():
            shutil.copytree(
                source, work / entry, ignore=shutil.ignore_patterns("*.duckdb", "*.duckdb.wal")
            )
        else:
            shutil.copy2(source, work / entry)
    (work / "node_modules").symlink_to(project / "node_modules", target_is_directory=True)


def _evidence(work: Path, command: str) -> None:
    environment = {
        **os.environ,
        # Evidence's own binaries first: `evidence build` calls `npx vite build`, which must
        # find the locked vite rather than ask the registry.
        "PATH": f"{work / 'node_modules' / '.bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        "NODE_OPTIONS": "--max-old-space-size=2048",
    }
    completed = subprocess.run(
        ["node", str(work / "node_modules" / "@evidence-dev" / "evidence" / "cli.js"), command],
        cwd=work,
        env=environment,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_SECONDS,
    )
    # A failed build may still exit 0 (the error is thrown in a child's exit handler).
    if completed.returncode != 0 or (command == "build" and not (work / "build").is_dir()):
        output = (completed.stdout + completed.stderr).strip()
        raise DashboardBuildFailed(f"evidence {command} failed:\n{output[-4000:]}")


def _swap(new_site: Path, site: Path) -> None:
    """Serve `new_site` at `site`; a server already open keeps reading whole files."""
    retired = site.with_name(f".{site.name}.{uuid.uuid4().hex}.old")
    if site.exists():
        site.rename(retired)
    new_site.rename(site)
    shutil.rmtree(retired, ignore_errors=True)


def build_dashboard(
    published: Path, site: Path, project: Path = DASHBOARD_PROJECT
) -> BuiltDashboard:
    """Build the static site of `project` from the published mart `published` into `site`.
    Each build works in a folder of its own beside `site`, so two builds never share files."""
    began = time.perf_counter()
    problem = missing_requirements(project)
    if problem:
        raise DashboardUnavailable(problem)
    work = site.with_name(f".build-{uuid.uuid4().hex}")
    try:
        _prepare_project(work, project)
        export_for_evidence(published, work / "sources" / SOURCE_NAME / f"{SOURCE_NAME}.duckdb")
        _evidence(work, "sources")
        _evidence(work, "build")
        _swap(work / "build", site)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    pages = sum(1 for _ in site.rglob("index.html"))
    return BuiltDashboard(site=site, pages=pages, seconds=time.perf_counter() - began)


def needs_build(published: Path, site: Path, project: Path = DASHBOARD_PROJECT) -> bool:
    """True when the site is missing or older than the published mart or the project."""
    index = site / "index.html"
    if not index.exists():
        return True
    built_at = index.stat().st_mtime
    return any(path.stat().st_mtime > built_at for path in [published, *_project_files(project)])


def _project_files(project: Path) -> Iterator[Path]:
    """The files a build copies (not node_modules, nor a local copy of the mart)."""
    for entry in PROJECT_ENTRIES:
        path = project / entry
        if path.is_dir():
            yield from (p for p in path.rglob("*") if p.is_file() and p.suffix != ".duckdb")
        elif path.exists():
            yield path


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """Requests are not worth a line each."""


def serve(site: Path, port: int) -> ThreadingHTTPServer:
    """A static server for the built site on localhost (not started: call serve_forever)."""
    handler = functools.partial(_QuietHandler, directory=str(site))
    return ThreadingHTTPServer(("127.0.0.1", port), handler)
