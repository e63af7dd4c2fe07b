"""The KPI dashboard (boussole/dashboard.py), rebuilt from each publication.

A consumer of the published mart, like the analysts: a dashboard that cannot be built (no
Node.js on the machine, an Evidence error) is reported in the run's log and left as it was,
and never turns a publication into a failed run.
"""

import dagster as dg

from boussole.dashboard import (
    DashboardBuildFailed,
    DashboardUnavailable,
    build_dashboard,
    site_path,
)
from orchestration.resources import SettingsResource

PUBLISHED_MART_KEY = dg.AssetKey("published_mart")


@dg.asset(
    name="kpi_dashboard",
    group_name="publication",
    deps=[PUBLISHED_MART_KEY],
    kinds={"evidence", "node"},
    output_required=False,
    description=(
        "The static KPI dashboard (Evidence, French and English) built from the published "
        "mart: overview, a page per category and per KPI, data quality. "
        "`boussole dashboard` serves it."
    ),
)
def kpi_dashboard(context: dg.AssetExecutionContext, settings: SettingsResource):
    current = settings.get()
    try:
        built = build_dashboard(current.published_mart_path, site_path(current.data_dir))
    except DashboardUnavailable as reason:
        context.log.warning(f"dashboard not built: {reason}")
        return
    except DashboardBuildFailed as failure:
        context.log.error(f"dashboard not built, the previous one is still served: {failure}")
        return
    context.log.info(f"dashboard built in {built.site} ({built.pages} pages)")
    yield dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(built.site)),
            "pages": built.pages,
            "seconds": round(built.seconds, 1),
        }
    )
