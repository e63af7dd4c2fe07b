"""`boussole kpi show <id>` and `boussole kpi list` on the published mart of the shared
sample run (sample_history, where every category has values), for one KPI of each category:
each part of the output is checked against values read here independently (the catalogue
YAML, the targets seed, the suites, the published kpi_values through DuckDB), not through the
code that prints them."""

import csv
import functools
import subprocess
from pathlib import Path

import duckdb
import pytest
import yaml

from tests.conftest import BOUSSOLE, PROJECT_ROOT

# One KPI of each category: aggregates, combinations, a key KPI and a supporting one.
SHOWN = {
    "sales": "win_rate",
    "finance": "sales_costs",
    "marketing": "cost_per_lead",
    "web": "sessions",
    "service": "resolution_rate",
}


@functools.cache
def catalogue_entries() -> dict[str, dict]:
    """The catalogue entries, read from the YAML file that holds them."""
    entries = {}
    for path in (PROJECT_ROOT / "dbt_project" / "models").rglob("*.yml"):
        for model in (yaml.safe_load(path.read_text()) or {}).get("models") or []:
            for kpi in model.get("config", {}).get("meta", {}).get("kpis", []):
                entries[kpi["id"]] = kpi
    return entries


@pytest.fixture(scope="module")
def published_env(sample_history, tmp_path_factory) -> dict[str, str]:
    """The environment of the shared run, with a data folder of its own whose published mart
    is the run's: dbt's artifacts of `kpi show` go there, not in the shared folder."""
    workspace = sample_history.workspace
    data = tmp_path_factory.mktemp("kpi_cli") / "data"
    data.mkdir()
    (data / "published").symlink_to(workspace.published.parent)
    return {**workspace.env, "BOUSSOLE_DATA_DIR": str(data)}


def boussole(env: dict[str, str], *args: str) -> str:
    completed = subprocess.run(
        [str(BOUSSOLE), *args], env=env, capture_output=True, text=True, timeout=300
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed.stdout


@pytest.fixture(scope="module")
def shown(published_env) -> dict[str, str]:
    """The output of `boussole kpi show` for each KPI of SHOWN (the first compiles the KPI
    models; the others read that compilation)."""
    return {kpi_id: boussole(published_env, "kpi", "show", kpi_id) for kpi_id in SHOWN.values()}


def section(output: str, title: str) -> str:
    """The lines of a section of the output: from its title to the next title."""
    lines = output.splitlines()
    start = lines.index(title)
    following = [i for i in range(start + 2, len(lines)) if lines[i].startswith("---")]
    end = following[0] - 1 if following else len(lines)
    return "\n".join(lines[start + 2 : end]).strip("\n")


def test_each_category_of_the_catalogue_has_a_kpi_shown():
    categories = {kpi["category"] for kpi in catalogue_entries().values()}
    assert categories == set(SHOWN)
    assert all(catalogue_entries()[kpi_id]["category"] == c for c, kpi_id in SHOWN.items())


@pytest.mark.parametrize("kpi_id", SHOWN.values())
def test_show_prints_the_definition_from_the_catalogue(shown, kpi_id):
    kpi = catalogue_entries()[kpi_id]
    output = shown[kpi_id]
    assert output.splitlines()[0] == f"{kpi_id}: {kpi['label_en']} ({kpi['label_fr']})"
    definition = " ".join(output.split("\nTargets\n")[0].split())
    for name, value in (
        ("Formula", kpi["formula"]),
        ("Unit", kpi["unit"]),
        ("Direction", kpi["direction"]),
        ("Category", kpi["category"]),
        ("Sources", ", ".join(kpi["source_systems"])),
        ("Slices", ", ".join(kpi["computation"].get("slices") or {}) or "-"),
    ):
        assert f"{name}: {value}" in definition
    grains = kpi.get("grains") or ["day", "week", "month", "quarter", "year"]
    assert f"Grains: {', '.join(grains)}" in definition


def test_show_in_french_prints_the_french_definition(published_env):
    kpi = catalogue_entries()["revenue"]
    output = " ".join(boussole(published_env, "kpi", "--lang", "fr", "show", "revenue").split())
    assert output.startswith(f"revenue: {kpi['label_fr']} ({kpi['label_en']})")
    assert f"Description: {kpi['description_fr']}" in output
    assert f"Formule: {kpi['formula_fr']}" in output
    assert kpi["description"] not in output
    # The latest values' trust reasons, in French.
    published = Path(published_env["BOUSSOLE_DATA_DIR"]) / "published" / "boussole.duckdb"
    with duckdb.connect(str(published), read_only=True) as conn:
        latest = conn.execute(
            "select trust_reasons_fr, trust_reasons from kpi_values where kpi_id = 'revenue' "
            "and grain = 'month' and dimension = 'all' order by period_start desc limit 6"
        ).fetchall()
    reasons = [(french, english) for french, english in latest if english]
    assert reasons, "the shared run publishes revenue values with trust reasons"
    for french, english in reasons:
        assert french in output and english not in output, (french, english)


@pytest.mark.parametrize("kpi_id", SHOWN.values())
def test_show_prints_the_targets_of_the_seed(shown, kpi_id):
    with (PROJECT_ROOT / "dbt_project" / "seeds" / "kpi_targets.csv").open() as file:
        rows = [row for row in csv.DictReader(file) if row["kpi_id"] == kpi_id]
    targets = section(shown[kpi_id], "Targets")
    if not rows:
        assert targets == "no target in kpi_targets"
    for row in rows:
        assert any(
            line.split()[:1] == [row["scope"]] and row["target"] in line.split()
            for line in targets.splitlines()
        ), (row, targets)


@pytest.mark.parametrize("kpi_id", SHOWN.values())
def test_show_prints_the_compiled_sql_that_computes_the_kpi(shown, kpi_id):
    sql = section(shown[kpi_id], "Compiled SQL")
    note = sql.splitlines()[0]
    if note.startswith(f"-- CTE kpi_{kpi_id} of the compiled model "):
        # The CTE after the comments that precede it, for a combination after the CTE of its
        # inputs.
        lines = [line.strip() for line in sql.splitlines()[1:]]
        headers = [f"kpi_{kpi_id}_inputs as (", f"kpi_{kpi_id} as ("]
        first = min(lines.index(header) for header in headers if header in lines)
        assert all(line.startswith("--") for line in lines[:first])
        assert f"kpi_{kpi_id} as (" in lines[first:]
        assert lines[-1] == ")"
    else:
        # Before the KPI layer names a CTE per KPI: the model computing it, whole.
        assert note.startswith(f"-- No CTE kpi_{kpi_id} in the compiled KPI models")
        assert f"'{kpi_id}'" in sql
    # Compiled: no Jinja left, relations named as the build warehouse names them.
    assert "{{" not in sql and "{%" not in sql
    assert f"'{kpi_id}' as kpi_id" in sql


@pytest.mark.parametrize("kpi_id", SHOWN.values())
def test_show_prints_the_checks_on_what_the_kpi_reads_and_on_kpi_values(shown, kpi_id):
    kpi = catalogue_entries()[kpi_id]
    checks = section(shown[kpi_id], "Checks that guard it")
    computation = kpi["computation"]
    inputs = [s.split("@")[0] for s in (computation.get("inputs") or {}).values()]
    facts = {computation.get("fact")} | {
        catalogue_entries()[i]["computation"].get("fact") for i in inputs
    }
    facts.discard(None)
    for fact in facts | {"kpi_values"}:
        assert f"  {fact}:" in checks.splitlines()
    suites = [
        yaml.safe_load(p.read_text())
        for p in (PROJECT_ROOT / "data_quality" / "suites").glob("*.yml")
    ]
    for suite in suites:
        guards = suite["table"].split(".")[-1] in facts | {"kpi_values"}
        assert (f"[GX suite] gx_{suite['suite']} " in checks) == guards, suite["suite"]
    # dbt's data tests of kpi_values, by the names dbt gives them.
    assert "[dbt test] kpi_values_column_values (error)" in checks
    anomaly = checks.splitlines()[-1]
    assert anomaly.startswith("  kpi_anomalies: ")
    assert ("judged at day, week grain" in anomaly) == (kpi["tier"] == "key")


@pytest.mark.parametrize("kpi_id", SHOWN.values())
def test_show_prints_the_latest_published_values_with_status_and_trust(
    shown, sample_history, kpi_id
):
    workspace = sample_history.workspace
    with duckdb.connect(str(workspace.published), read_only=True) as conn:
        expected = conn.execute(
            "select period_start::varchar, status, trust_status from kpi_values "
            "where kpi_id = ? and grain = 'month' and dimension = 'all' "
            "order by period_start desc limit 6",
            [kpi_id],
        ).fetchall()
    title = next(line for line in shown[kpi_id].splitlines() if line.startswith("Latest values"))
    table = section(shown[kpi_id], title).splitlines()
    assert table[0].split() == [
        "period_start",
        "value",
        "target",
        "status",
        "trust_status",
        "trust_reasons",
    ]
    assert expected, "the shared run publishes every KPI at month grain"
    printed = [line.split()[:1] + line.split()[3:5] for line in table[1:]]
    assert printed == [
        [period, status or "-", trust or "-"] for period, status, trust in reversed(expected)
    ]


def test_show_says_when_nothing_is_published(published_env, shown, tmp_path):
    # A data folder without a published mart, sharing dbt's compilation of the KPI models.
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "dbt").symlink_to(Path(published_env["BOUSSOLE_DATA_DIR"]) / "dbt")
    output = boussole({**published_env, "BOUSSOLE_DATA_DIR": str(empty)}, "kpi", "show", "sessions")
    missing = empty / "published" / "boussole.duckdb"
    assert f"Nothing published yet: {missing} does not exist (run `boussole run`)." in output


def test_show_refuses_an_unknown_kpi(published_env):
    completed = subprocess.run(
        [str(BOUSSOLE), "kpi", "show", "no_such_kpi"],
        env=published_env,
        capture_output=True,
        text=True,
    )
    assert completed.returncode == 2
    assert "unknown KPI 'no_such_kpi'" in completed.stderr


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_list_groups_every_kpi_by_category_with_its_label_and_unit(published_env, lang):
    output = boussole(published_env, "kpi", "--lang", lang, "list")
    entries = catalogue_entries()
    for category in {kpi["category"] for kpi in entries.values()}:
        count = sum(kpi["category"] == category for kpi in entries.values())
        rows = section(output, f"{category} ({count})").splitlines()[1:]
        listed = {line.split()[0]: line for line in rows}
        assert set(listed) == {k for k, kpi in entries.items() if kpi["category"] == category}
        for kpi_id, line in listed.items():
            kpi = entries[kpi_id]
            assert f" {kpi[f'label_{lang}']} " in line and f" {kpi['unit']} " in line


def test_show_in_french_puts_the_french_label_first(published_env):
    output = boussole(published_env, "kpi", "--lang", "fr", "show", "win_rate")
    kpi = catalogue_entries()["win_rate"]
    assert output.splitlines()[0] == f"win_rate: {kpi['label_fr']} ({kpi['label_en']})"
    assert "Dernières valeurs (company, month; " in output
