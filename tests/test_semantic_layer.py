"""The MetricFlow semantic layer generated from the KPI catalogue: the checked-in file is the
catalogue's, and MetricFlow's answers (`mf query` on the build warehouse, company, month)
equal kpi_values for every KPI it expresses: an independent route to the same numbers, from
the marts' facts through MetricFlow's own SQL instead of the KPI models.

MetricFlow expresses every `aggregate` KPI (simple metrics; ratios as ratio metrics; csat and
nps as derived metrics over their numerator and denominator; medians as median measures) and
every `combination` of those (derived metrics; `revenue@previous` as an offset window of one
month). Each additive KPI (a sum or a count) also has a cumulative metric, its year-to-date
total, compared with the running sum over the year of its monthly kpi_values. It cannot
express, and the generated file's header says so:
- the `at_period_end` stocks (open_deals, open_pipeline_value, weighted_pipeline_value,
  win_rate_90d, average_deal_size_90d, sales_cycle_days_90d, active_customers, mrr,
  customer_lifetime_value, backlog): each counts the state spells of records on each
  period's last day, and a MetricFlow measure aggregates a row in the one period of its
  time dimension (a cumulative metric windows rows by one date, not spells by their state);
  customer_lifetime_value also reads dbt vars (margin, lifetime);
- the combinations that read them (pipeline_velocity, customer_retention_rate, ltv_to_cac).
The comparison runs on the warehouses of both shared runs: landing_small (two months, so
revenue_growth has a previous month) and the generated sample (volume: medians, distinct
users, ratios of many rows).
"""

import csv
import math
import shutil
from pathlib import Path

import duckdb
import pytest

from boussole.kpi_catalogue import KpiCatalogue
from boussole.semantic_layer import (
    GENERATED_FILE,
    YEAR_TO_DATE_SUFFIX,
    build_semantic_layer,
    generated_text,
    run_metricflow,
)
from boussole.settings import Settings

EXPRESSED_BY_NO_METRICFLOW_AGGREGATION = "at_period_end"


def test_the_generated_file_is_the_catalogues():
    assert GENERATED_FILE.read_text() == generated_text(KpiCatalogue.from_project_files()), (
        "the semantic layer drifted from the KPI catalogue: run `boussole semantic-layer`"
    )


def test_only_the_stocks_and_what_reads_them_are_left_out():
    kpis = {kpi["id"]: kpi for kpi in KpiCatalogue.from_project_files().kpis}

    def reads_a_stock(kpi_id: str) -> bool:
        computation = kpis[kpi_id]["computation"]
        inputs = [source.split("@")[0] for source in (computation.get("inputs") or {}).values()]
        return computation["type"] == EXPRESSED_BY_NO_METRICFLOW_AGGREGATION or any(
            reads_a_stock(i) for i in inputs
        )

    layer = build_semantic_layer(list(kpis.values()))
    assert set(layer.unexpressed) == {k for k in kpis if reads_a_stock(k)}
    assert set(layer.expressed) == {k for k in kpis if not reads_a_stock(k)}
    assert all(f"#   {kpi_id}: " in GENERATED_FILE.read_text() for kpi_id in layer.unexpressed)


def metricflow_by_month(workspace, tmp_path: Path, metrics: list[str]) -> dict[tuple, float | None]:
    """{(metric, month): value} of `mf query` grouped by metric_time__month, on a copy of the
    run's build warehouse (MetricFlow's dbt session opens it for writing, which would lock
    the shared one against the other tests' readers)."""
    data = tmp_path / "data"
    (data / "build").mkdir(parents=True)
    shutil.copy(workspace.data / "build" / "warehouse.duckdb", data / "build" / "warehouse.duckdb")
    settings = Settings.from_env({**workspace.env, "BOUSSOLE_DATA_DIR": str(data)})
    answer = tmp_path / "metricflow.csv"
    query = ["query", "--metrics", ",".join(metrics), "--group-by", "metric_time__month"]
    completed = run_metricflow(
        settings,
        [*query, "--csv", str(answer)],
        capture_output=True,
        text=True,
    )
    assert completed.returncode == 0 and answer.exists(), completed.stdout + completed.stderr
    values = {}
    with answer.open() as file:
        for row in csv.DictReader(file):
            month = row.pop("metric_time__month")[:10]
            # Rows whose date is null (a ticket not solved yet) are in no period.
            if month:
                values |= {(m, month): float(v) if v else None for m, v in row.items()}
    return values


def year_to_date_metrics(kpis: dict[str, dict]) -> dict[str, str]:
    """{cumulative metric: its KPI} for the additive KPIs computed from facts."""
    return {
        f"{kpi_id}{YEAR_TO_DATE_SUFFIX}": kpi_id
        for kpi_id, kpi in kpis.items()
        if kpi.get("additive") and kpi["computation"]["type"] == "aggregate"
    }


def test_each_additive_kpi_has_its_year_to_date_metric():
    kpis = {kpi["id"]: kpi for kpi in KpiCatalogue.from_project_files().kpis}
    layer = build_semantic_layer(list(kpis.values()))
    cumulative = {m["name"] for m in layer.metrics if m["type"] == "cumulative"}
    assert cumulative == set(year_to_date_metrics(kpis))
    assert {"revenue_year_to_date", "leads_year_to_date", "sessions_year_to_date"} <= cumulative


@pytest.mark.parametrize("run", ["small_pipeline", "sample_history"])
def test_metricflow_answers_equal_kpi_values_for_the_company_by_month(request, tmp_path, run):
    shared = request.getfixturevalue(run)
    workspace = shared[0] if run == "small_pipeline" else shared.workspace
    kpis = {kpi["id"]: kpi for kpi in KpiCatalogue.from_project_files().kpis}
    metrics = build_semantic_layer(list(kpis.values())).expressed
    year_to_date = year_to_date_metrics(kpis)
    answers = metricflow_by_month(workspace, tmp_path, [*metrics, *year_to_date])
    with duckdb.connect(str(workspace.published), read_only=True) as conn:
        published = conn.execute(
            "select kpi_id, period_start::varchar, value from kpi_values "
            "where grain = 'month' and dimension = 'all' and kpi_id in "
            f"({', '.join('?' for _ in metrics)}) order by kpi_id, period_start",
            metrics,
        ).fetchall()
    compared = {kpi_id for kpi_id, _, _ in published}
    if run == "sample_history":
        # The sample has rows of every kind: each KPI MetricFlow expresses is compared
        # (landing_small has no marketing rows, so kpi_values has none of those KPIs).
        assert compared == set(metrics)
    assert compared
    # The year-to-date totals, summed here from the monthly values kpi_values publishes.
    running: dict[tuple[str, str], float] = {}
    expected: dict[tuple[str, str], float] = {}
    for kpi_id, month, value in published:
        if kpi_id in year_to_date.values():
            total = running.get((kpi_id, month[:4]), 0.0) + value
            running[(kpi_id, month[:4])] = total
            expected[(f"{kpi_id}{YEAR_TO_DATE_SUFFIX}", month)] = total
    different = []
    for kpi_id, month, value in published:
        # A period without rows has no MetricFlow row; kpi_values says 0 for a sum or count.
        default = 0.0 if kpis[kpi_id].get("additive") else None
        different += mismatch(kpi_id, month, value, answers.get((kpi_id, month), default))
    year_to_date_compared = 0
    for (metric, month), value in expected.items():
        if (metric, month) in answers:
            year_to_date_compared += 1
            different += mismatch(metric, month, value, answers[(metric, month)])
        elif value:
            different.append((metric, month, value, "no MetricFlow row"))
    assert year_to_date_compared >= len(set(year_to_date.values()) & compared)
    assert different == [], "metric, month, kpi_values, MetricFlow"


def mismatch(metric: str, month: str, value: float | None, answer: float | None) -> list[tuple]:
    same = (answer is None and value is None) or (
        answer is not None
        and value is not None
        and math.isclose(answer, value, rel_tol=1e-9, abs_tol=1e-9)
    )
    return [] if same else [(metric, month, value, answer)]
