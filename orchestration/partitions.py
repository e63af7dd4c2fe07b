"""Ingestion is partitioned by extract date: the day an extract was taken."""

import dagster as dg

from boussole.settings import get_settings

# end_offset=1: today's extract is a partition as soon as its files land.
extract_date_partitions = dg.DailyPartitionsDefinition(
    start_date=get_settings().first_extract_date.isoformat(),
    end_offset=1,
    timezone=get_settings().reporting_tz,
)
