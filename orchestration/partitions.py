"""Ingestion is partitioned by extract date: the day an extract was taken."""

import dagster as dg

from boussole.settings import Settings


def extract_date_partitions(settings: Settings) -> dg.DailyPartitionsDefinition:
    # end_offset=1: today's extract is a partition as soon as its files land.
    return dg.DailyPartitionsDefinition(
        start_date=settings.first_extract_date.isoformat(),
        end_offset=1,
        timezone=settings.reporting_tz,
    )
