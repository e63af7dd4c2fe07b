"""Adding a KPI is adding a catalogue entry (issue 18, item 4): in a copy of the dbt project,
new entries in a category no KPI had, one on a fact other entries read and one on a model no
entry read (added to the copy with the entry); nothing else edited (no list of models, no
dependency line). dbt builds them on the hand-made CRM fixture (tests/fixtures/kpi_sales, see
tests/test_kpi_sales.py) and kpi_values holds their hand-worked values.

The fixture's lost deals: 104 (Delta, EUR 500, owner 501 of team Paris) lost on 01-26 and 110
(Epsilon, EUR 600, owner 503 of team Paris) lost on 02-25; none in March, a zero (additive) up
to the as-of date 2026-03-31. lost_deal_amount sums their amounts from fct_deals; deals_lost
counts them from the new model fct_lost_deals."""

import shutil
from pathlib import Path

import duckdb
import pytest
import yaml

from boussole.dbt_invocation import DbtInvocation
from boussole.settings import DBT_PROJECT_DIR, PII_KEY_VARIABLE, Settings
from tests.conftest import FIXTURES, load_landing

AS_OF = "2026-03-31"
LOST_DEAL_AMOUNT = {
    "id": "lost_deal_amount",
    "label_fr": "Montant des affaires perdues",
    "label_en": "Lost deal amount",
    "description": "Amount of the deals lost, by close date, in the reporting currency.",
    "formula": "sum(amount of deals lost), by close date",
    "description_fr": "Montant des affaires perdues, par date de clôture, en devise de reporting.",
    "formula_fr": "somme(montant des affaires perdues), par date de clôture",
    "unit": "currency",
    "direction": "lower_is_better",
    "category": "deal_risk",
    "kind": "operational",
    "indicator_type": "lagging",
    "tier": "supporting",
    "owner_team": "sales",
    "source_systems": ["crm"],
    "additive": True,
    "computation": {
        "type": "aggregate",
        "rollup": "sum_of_days",
        "fact": "fct_deals",
        "date": "close_date",
        "numerator": "sum(amount_reporting)",
        "where": "is_lost",
        "slices": {"team": "team_name"},
    },
}


# The new model: one row per lost deal.
LOST_DEALS_MODEL = """
select deal_id, close_date, team_name
from {{ ref('fct_deals') }}
where is_lost
"""
DEALS_LOST = {
    **LOST_DEAL_AMOUNT,
    "id": "deals_lost",
    "label_fr": "Affaires perdues",
    "label_en": "Deals lost",
    "description": "Number of deals lost, by close date.",
    "formula": "count(deals lost), by close date",
    "description_fr": "Nombre d'affaires perdues, par date de clôture.",
    "formula_fr": "nombre(affaires perdues), par date de clôture",
    "unit": "count",
    "computation": {
        "type": "aggregate",
        "rollup": "sum_of_days",
        "fact": "fct_lost_deals",
        "date": "close_date",
        "numerator": "count(*)",
        "slices": {"team": "team_name"},
    },
}


def dbt_on_project(project: Path, *args: str, warehouse: Path, target: Path):
    """dbt as the pipeline invokes it (DbtInvocation), on the project folder `project`."""
    invocation = DbtInvocation(
        Settings.from_env({PII_KEY_VARIABLE: "test-key-for-boussole-tests"}),
        as_of_date=AS_OF,
        warehouse=warehouse,
        project_dir=project,
    )
    return invocation.run(*args, target_path=target, capture_output=True, text=True)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("kpi_added")
    project = root / "dbt_project"
    shutil.copytree(
        DBT_PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages")
    )
    catalogue_path = next(project.rglob("kpi_catalogue.yml"))
    catalogue = yaml.safe_load(catalogue_path.read_text())
    catalogue["models"][0]["config"]["meta"]["kpis"] += [LOST_DEAL_AMOUNT, DEALS_LOST]
    catalogue_path.write_text(yaml.safe_dump(catalogue, allow_unicode=True, sort_keys=False))
    (project / "models" / "marts" / "sales" / "fct_lost_deals.sql").write_text(LOST_DEALS_MODEL)

    warehouse = root / "warehouse.duckdb"
    load_landing(warehouse, FIXTURES / "kpi_sales")
    target = root / "target"
    # The KPI mart and what it reads, without the data tests (the fixture's are elsewhere).
    result = dbt_on_project(
        project,
        *("build", "--select", "+kpi_values"),
        *("--exclude", "resource_type:test", "resource_type:unit_test"),
        warehouse=warehouse,
        target=target,
    )
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
    return warehouse, target


def monthly_values(warehouse: Path, kpi_id: str) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        return conn.execute(
            "select period_start::varchar, dimension, dimension_value, value from kpi.kpi_values "
            "where kpi_id = ? and grain = 'month' order by all",
            [kpi_id],
        ).fetchall()


def by_month(january: float, february: float) -> list[tuple]:
    """The fixture's lost deals month by month: all of team Paris, none in March."""
    return [
        ("2026-01-01", "all", "all", january),
        ("2026-01-01", "team", "Paris", january),
        ("2026-02-01", "all", "all", february),
        ("2026-02-01", "team", "Paris", february),
        ("2026-03-01", "all", "all", 0.0),
    ]


def test_a_new_entry_is_in_kpi_values_with_its_hand_worked_values(built):
    warehouse, _ = built
    assert monthly_values(warehouse, "lost_deal_amount") == by_month(500.0, 600.0)
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        category = conn.execute(
            "select category from kpi.kpi_catalogue where kpi_id = 'lost_deal_amount'"
        ).fetchone()
    assert category == ("deal_risk",)


def test_a_new_entry_on_a_new_model_is_in_kpi_values(built):
    warehouse, _ = built
    assert monthly_values(warehouse, "deals_lost") == by_month(1.0, 1.0)


def test_its_compiled_sql_is_a_named_block_with_its_definition(built):
    _, target = built
    compiled = next(target.rglob("int_kpi__values_from_rebuilt_facts.sql")).read_text()
    block = compiled[compiled.index("-- lost_deal_amount: Lost deal amount") :]
    assert block.splitlines()[1].strip() == (
        "-- Amount of the deals lost, by close date, in the reporting currency."
    )
    assert "kpi_lost_deal_amount as (" in block
