#!/usr/bin/env python3
"""Set-up and the two everyday commands, with nothing but Python and pip on the machine.

    python3 dev.py run     # create .venv, install the lock, run the pipeline end to end
    python3 dev.py test    # create .venv, install the lock, lint and run the whole test suite
    python3 dev.py lock    # re-resolve requirements.lock from pyproject.toml (maintainers)

The virtual environment is re-installed only when requirements.lock or pyproject.toml change,
and the dashboard's npm packages (dashboard/node_modules) only when its package-lock.json does.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / "bin"
STAMP = VENV / ".boussole-install-stamp"
INSTALL_INPUTS = ("requirements.lock", "pyproject.toml")
DASHBOARD = ROOT / "dashboard"
DASHBOARD_STAMP = DASHBOARD / "node_modules" / ".boussole-install-stamp"


def _say(message: str) -> None:
    print(f"[dev] {message}", flush=True)


def _run(*args: str | Path, env: dict[str, str] | None = None) -> None:
    completed = subprocess.run([str(a) for a in args], cwd=ROOT, env=env)
    if completed.returncode != 0:
        sys.exit(completed.returncode)


def _install_fingerprint() -> str:
    digest = hashlib.sha256()
    for name in INSTALL_INPUTS:
        digest.update((ROOT / name).read_bytes())
    return digest.hexdigest()


def ensure_environment() -> None:
    """Create .venv and install the locked dependencies plus this project (editable)."""
    if sys.version_info[:2] != (3, 11):
        _say(f"warning: Boussole is pinned for Python 3.11, this is {sys.version.split()[0]}")
    fingerprint = _install_fingerprint()
    if STAMP.exists() and STAMP.read_text() == fingerprint:
        return
    if not (BIN / "python").exists():
        _say(f"creating virtual environment in {VENV}")
        venv.EnvBuilder(with_pip=True).create(VENV)
    _say("installing locked dependencies (first time: a few minutes)")
    pip = [BIN / "python", "-m", "pip", "--disable-pip-version-check"]
    _run(*pip, "install", "--quiet", "--upgrade", "pip")
    _run(*pip, "install", "--quiet", "-r", ROOT / "requirements.lock")
    _run(*pip, "install", "--quiet", "--no-deps", "-e", ROOT)
    STAMP.write_text(fingerprint)


def ensure_dashboard_packages() -> None:
    """Install the dashboard's locked npm packages (Evidence) when package-lock.json changed.
    Without Node.js, say so and go on: the pipeline runs without its dashboard."""
    if shutil.which("npm") is None:
        _say("warning: npm not found, the KPI dashboard cannot be built (install Node.js 20)")
        return
    fingerprint = hashlib.sha256((DASHBOARD / "package-lock.json").read_bytes()).hexdigest()
    if DASHBOARD_STAMP.exists() and DASHBOARD_STAMP.read_text() == fingerprint:
        return
    _say("installing the dashboard's locked npm packages (first time: a minute or two)")
    # `npm ci` runs the project's postinstall, the patch that makes Evidence work offline.
    completed = subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=DASHBOARD
    )
    if completed.returncode != 0:
        sys.exit(completed.returncode)
    DASHBOARD_STAMP.write_text(fingerprint)


def _tool_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
    return env


def command_run(extra: list[str]) -> None:
    ensure_environment()
    ensure_dashboard_packages()
    env = _tool_env()
    # The run ends by building the KPI dashboard from what it published (boussole dashboard).
    env.setdefault("BOUSSOLE_DASHBOARD", "1")
    _run(BIN / "boussole", "generate", "--if-empty", env=env)
    _run(BIN / "boussole", "run", *extra, env=env)


def command_test(extra: list[str]) -> None:
    """Lint, then the tests in parallel (pytest-xdist, a worker per core;
    tests/conftest.py keeps each module in one worker, and builds the shared runs once).
    sqlfluff runs beside pytest, whose slowest test group decides the end anyway."""
    ensure_environment()
    ensure_dashboard_packages()
    env = _tool_env()
    started = time.monotonic()
    _say("ruff")
    _run(BIN / "ruff", "check", ".", env=env)
    _run(BIN / "ruff", "format", "--check", ".", env=env)
    sqlfluff_config = Path(tempfile.mkdtemp()) / "sqlfluff.cfg"
    _run(BIN / "boussole", "prepare", "--sqlfluff-config", sqlfluff_config, env=env)
    _say("sqlfluff (dbt templater), in the background; its report follows pytest's")
    with tempfile.TemporaryFile(mode="w+") as sqlfluff_report:
        sqlfluff = subprocess.Popen(
            [BIN / "sqlfluff", "lint", "--config", sqlfluff_config, "dbt_project/models"],
            cwd=ROOT,
            env=env,
            stdout=sqlfluff_report,
            stderr=subprocess.STDOUT,
            text=True,
        )
        _say("pytest")
        tests = subprocess.run(
            [
                BIN / "python",
                "-m",
                "pytest",
                "-n",
                # A worker per core: a third worker on two cores was measured slower (the
                # longest group then runs at two thirds of a core).
                "auto",
                "--dist",
                "loadgroup",
                # In tests/conftest.py's order, the longest groups first (by default
                # pytest-xdist puts the groups of most tests first, whatever their length).
                "--no-loadscope-reorder",
                "--durations=15",
                *extra,
            ],
            cwd=ROOT,
            env=env,
        )
        linted = sqlfluff.wait()
        sqlfluff_report.seek(0)
        _say(f"sqlfluff: {'clean' if linted == 0 else 'FAILED'}")
        print(sqlfluff_report.read(), flush=True)
    _say(f"lint and tests took {(time.monotonic() - started) / 60:.1f} minutes")
    if tests.returncode != 0 or linted != 0:
        sys.exit(tests.returncode or linted)


def command_lock(extra: list[str]) -> None:
    ensure_environment()
    _run(BIN / "python", "-m", "pip", "install", "--quiet", "pip-tools")
    _run(
        BIN / "pip-compile",
        "--quiet",
        "--extra=dev",
        "--strip-extras",
        "--no-emit-index-url",
        "--no-emit-find-links",
        "--output-file=requirements.lock",
        "pyproject.toml",
        *extra,
    )


COMMANDS = {"run": command_run, "test": command_test, "lock": command_lock}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        print(__doc__)
        sys.exit(2)
    COMMANDS[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    main()
