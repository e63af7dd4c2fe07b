"""Configuration by environment variables, and the command line's help and errors."""

import subprocess
from datetime import date

import pytest

from boussole.cli import build_parser
from boussole.ingestion.contracts import SAMPLE_MARKER
from boussole.settings import DEVELOPMENT_PII_KEY, Settings, SettingsError
from tests.conftest import BOUSSOLE


def test_defaults(tmp_path):
    settings = Settings.from_env({"BOUSSOLE_DATA_DIR": str(tmp_path)})
    assert settings.reporting_tz == "Europe/Paris"
    assert settings.reporting_currency == "EUR"
    assert settings.landing_dir == tmp_path / "landing"
    assert settings.build_warehouse_path == tmp_path / "build" / "warehouse.duckdb"
    assert settings.published_mart_path == tmp_path / "published" / "boussole.duckdb"
    assert settings.pii_key == DEVELOPMENT_PII_KEY and settings.uses_development_pii_key
    # The dashboard and the PostgreSQL publication are asked for, not assumed.
    assert not settings.build_dashboard and settings.postgres_publishing is None
    assert Settings.from_env({"BOUSSOLE_DASHBOARD": "1"}).build_dashboard


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("BOUSSOLE_REPORTING_TZ", "Mars/Olympus"),
        ("BOUSSOLE_REPORTING_CURRENCY", "euro"),
        ("BOUSSOLE_FIRST_EXTRACT_DATE", "21/11/2026"),
        ("BOUSSOLE_PII_KEY", "k"),
        ("BOUSSOLE_DASHBOARD", "maybe"),
    ],
)
def test_bad_values_name_the_variable(variable, value):
    with pytest.raises(SettingsError, match=variable):
        Settings.from_env({variable: value})


def test_development_pii_key_warns(caplog):
    Settings.from_env({}).warn_if_insecure()
    assert "BOUSSOLE_PII_KEY is not set" in caplog.text
    caplog.clear()
    Settings.from_env({"BOUSSOLE_PII_KEY": "a-secret-of-sixteen-or-more"}).warn_if_insecure()
    assert caplog.text == ""


COMMANDS = [
    "generate",
    "run",
    "rotate-key",
    "quarantine",
    "accept-restatements",
    "postgres",
    "publish-postgres",
    "kpi",
    "semantic-layer",
    "mf",
    "dbt",
    "dashboard",
    "prepare",
    "ui",
]


def test_the_commands_are_those_listed():
    assert set(build_parser()._subparsers._group_actions[0].choices) == set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command):
    completed = subprocess.run([str(BOUSSOLE), command, "--help"], capture_output=True, text=True)
    assert completed.returncode == 0
    assert f"usage: boussole {command}" in completed.stdout
    # The whole description, as argparse wraps it.
    description = build_parser()._subparsers._group_actions[0].choices[command].description
    assert len(description) > 40
    assert " ".join(description.split()) in " ".join(completed.stdout.split())


def test_run_without_extracts_says_what_to_do(workspace):
    empty = workspace.landing.parent / "empty"
    empty.mkdir()
    completed = subprocess.run(
        [str(BOUSSOLE), "run"],
        env={**workspace.env, "BOUSSOLE_LANDING_DIR": str(empty)},
        capture_output=True,
        text=True,
    )
    assert completed.returncode == 2
    assert f"No extracts in {empty}" in completed.stderr
    assert "boussole generate" in completed.stderr


def test_bad_configuration_is_reported_not_raised(workspace):
    completed = subprocess.run(
        [str(BOUSSOLE), "run"],
        env={**workspace.env, "BOUSSOLE_REPORTING_TZ": "Nowhere/Land"},
        capture_output=True,
        text=True,
    )
    assert completed.returncode == 2
    assert "configuration error: BOUSSOLE_REPORTING_TZ='Nowhere/Land'" in completed.stderr


def test_generate_is_deterministic_and_respects_if_empty(tmp_path):
    def tree(root):
        return {
            path.relative_to(root).as_posix(): path.read_bytes()
            for path in sorted(root.rglob("*"))
            if path.is_file()
        }

    args = ["generate", "--end", "2026-01-03", "--web-events-per-day", "40", "--owners", "3"]
    for name in ("a", "b"):
        completed = subprocess.run(
            [str(BOUSSOLE), *args, "--landing-dir", str(tmp_path / name)],
            capture_output=True,
            text=True,
        )
        assert completed.returncode == 0, completed.stderr
    assert tree(tmp_path / "a") == tree(tmp_path / "b")
    assert {p.split("/")[1] for p in tree(tmp_path / "a") if p != SAMPLE_MARKER} == {
        "2026-01-01",
        "2026-01-02",
        "2026-01-03",
    }

    again = subprocess.run(
        [str(BOUSSOLE), *args, "--if-empty", "--landing-dir", str(tmp_path / "a")],
        capture_output=True,
        text=True,
    )
    assert "already holds extracts: nothing generated" in again.stdout

    bad = subprocess.run(
        [str(BOUSSOLE), "generate", "--fault", "gremlins", "--landing-dir", str(tmp_path / "c")],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "unknown fault(s) ['gremlins']" in bad.stderr


def test_run_covers_every_extract_date_found_or_the_range_asked(tmp_path):
    from boussole.cli import extract_date_range

    for source, day in [("crm", "2026-01-05"), ("web", "2026-01-09"), ("support", "2026-02-01")]:
        (tmp_path / source / day).mkdir(parents=True)
    settings = Settings.from_env({"BOUSSOLE_LANDING_DIR": str(tmp_path)})

    assert extract_date_range(settings) == ("2026-01-05", "2026-02-01")
    assert extract_date_range(settings, start=date(2026, 1, 6)) == ("2026-01-09", "2026-02-01")
    assert extract_date_range(settings, end=date(2026, 1, 31)) == ("2026-01-05", "2026-01-09")
    assert extract_date_range(settings, date(2026, 1, 10), date(2026, 1, 20)) is None
    early = Settings.from_env(
        {"BOUSSOLE_LANDING_DIR": str(tmp_path), "BOUSSOLE_FIRST_EXTRACT_DATE": "2026-01-06"}
    )
    assert extract_date_range(early) is None
