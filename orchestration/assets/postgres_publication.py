"""The published mart loaded into PostgreSQL for BI tools, after each publication (in the
definitions only when BOUSSOLE_PG_PUBLISH is on)."""

import dagster as dg

from boussole.postgres_publication import publish_to_postgres
from orchestration.resources import SettingsResource

PUBLISHED_MART_KEY = dg.AssetKey("published_mart")


@dg.asset(
    name="postgres_mart",
    group_name="publication",
    deps=[PUBLISHED_MART_KEY],
    kinds={"postgres"},
    description=(
        "The published mart, every table, loaded into a new PostgreSQL schema that replaces "
        "the served one in one transaction; ensures the read-only role BI tools log in as."
    ),
)
def postgres_mart(context: dg.AssetExecutionContext, settings: SettingsResource):
    current = settings.get()
    target = current.postgres_publishing
    if target is None:
        raise dg.Failure(description="BOUSSOLE_PG_PUBLISH is off: nothing to publish to")
    # The file served now: when two runs end together, the later mart wins here too.
    published = publish_to_postgres(current.published_mart_path, target)
    context.log.info(
        f"served {len(published.row_counts)} tables in {target.host}:{target.port}/"
        f"{target.dbname} schema {published.schema} in {published.seconds:.1f} s"
    )
    if published.swap_attempts > 1:
        context.log.info(
            f"the swap waited for readers of the previous mart ({published.swap_attempts} tries)"
        )
    return dg.MaterializeResult(
        metadata={
            "schema": published.schema,
            "database": f"{target.host}:{target.port}/{target.dbname}",
            "reader_role": target.reader_role,
            "tables": dg.MetadataValue.json(published.row_counts),
            "dagster/row_count": sum(published.row_counts.values()),
            "seconds": round(published.seconds, 3),
            "swap_attempts": published.swap_attempts,
            "publication_id": published.publication_id,
        }
    )
