"""Deterministic sample data in the vendors' shapes (HubSpot CRM v3, GA4 BigQuery export,
Zendesk Support, spend CSVs), written into the landing layout
<landing>/<source>/<YYYY-MM-DD>/<object>.<ext>, one incremental extract per day.

The first extract day is a full load (everything existing by then, including a warm-up
history); later days hold the records created or updated that day, so a deal that moves
stage or closes appears again with a newer updatedAt. `rows_by_object` in the summary
counts the generated records, before any fault injection.
"""

from .faults import FAULTS
from .generator import GenerationSummary, SampleScale, generate

__all__ = ["FAULTS", "GenerationSummary", "SampleScale", "generate"]
