"""The audit of the KPIs themselves, beside the checks on their inputs: anomalies of the key
KPIs (boussole/anomalies.py), judged in the build warehouse once dbt has built kpi_values, so
that `kpi_anomalies` is published with the mart (and raises alerts at publication)."""

import dagster as dg

from boussole.anomalies import SEVERITIES
from boussole.anomalies import kpi_anomalies as judge_key_kpis
from orchestration.assets.ingestion import WAREHOUSE_POOL
from orchestration.resources import WarehouseResource

ANOMALIES_KEY = dg.AssetKey(["kpi", "kpi_anomalies"])
# Rows listed in the materialisation's preview: the latest anomalies first.
PREVIEW_ROWS = 20


def build_anomalies_asset(kpi_values: dg.AssetKey) -> dg.AssetsDefinition:
    @dg.asset(
        key=ANOMALIES_KEY,
        group_name="audit",
        deps=[kpi_values],
        pool=WAREHOUSE_POOL,
        kinds={"duckdb", "python"},
        description=(
            "Each period of the key KPIs at day and week grain (company and each slice with "
            "enough volume) against a seasonal, robust baseline learnt from the periods "
            "before it only: expected value, bounds, score, severity."
        ),
    )
    def kpi_anomalies(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
        with warehouse.connect() as conn:
            # kpi_values and kpi_catalogue are read, and the table written, in the kpi schema.
            conn.execute("use kpi")
            judged = judge_key_kpis(conn, table="kpi.kpi_anomalies")
        flagged = judged[judged["severity"].isin(SEVERITIES[1:])]
        counts = judged["severity"].value_counts().to_dict()
        latest = flagged.sort_values("period_start", ascending=False).head(PREVIEW_ROWS)
        context.log.info(
            f"{len(judged)} periods judged: "
            + ", ".join(f"{count} {severity}" for severity, count in sorted(counts.items()))
        )
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": len(judged),
                "by_severity": dg.MetadataValue.json({k: int(v) for k, v in counts.items()}),
                "latest_anomalies": dg.MetadataValue.md(
                    "\n".join(
                        [
                            "| KPI | grain | period | slice | value | expected | score | "
                            "severity | kind |",
                            "|---|---|---|---|---|---|---|---|---|",
                        ]
                        + [
                            f"| {r.kpi_id} | {r.grain} | {r.period_start} | "
                            f"{r.dimension} = {r.dimension_value} | {r.value:,.2f} | "
                            f"{r.expected_value:,.2f} | {r.score:.1f} | {r.severity} | {r.kind} |"
                            for r in latest.itertuples()
                        ]
                    )
                    if len(latest)
                    else "none"
                ),
            }
        )

    return kpi_anomalies
