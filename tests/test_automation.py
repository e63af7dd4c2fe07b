"""The landing sensor launches one run over the extract dates whose files are new or changed."""

import dagster as dg
import pytest

from boussole.settings import PII_KEY_VARIABLE, Settings
from orchestration.automation import (
    PARTITION_RANGE_END,
    PARTITION_RANGE_START,
    landing_files_sensor,
)
from orchestration.resources import LandingResource, SettingsResource

# Not the public development key, which the sensor refuses on these hand-made landing folders.
KEY = "Lz4-aQ8wRt2yUi6oPs0dFg"


@pytest.fixture(autouse=True)
def _pii_key(monkeypatch):
    # The settings resource reads a secret key from the environment when it is built.
    monkeypatch.setenv(PII_KEY_VARIABLE, KEY)


def evaluate(landing, cursor=None):
    context = dg.build_sensor_context(
        cursor=cursor,
        resources={
            "landing": LandingResource(path=str(landing)),
            "settings": SettingsResource.from_settings(Settings.from_env({PII_KEY_VARIABLE: KEY})),
        },
    )
    result = landing_files_sensor(context)
    return result, context.cursor


def land(landing, source, day, name="tickets.jsonl", content='{"id": 1}\n'):
    path = landing / source / day / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)


def test_sensor_requests_the_range_of_new_dates_then_waits(tmp_path):
    land(tmp_path, "support", "2026-01-05")
    land(tmp_path, "web", "2026-01-07", "events.jsonl")
    request, cursor = evaluate(tmp_path)
    assert isinstance(request, dg.RunRequest)
    assert request.tags[PARTITION_RANGE_START] == "2026-01-05"
    assert request.tags[PARTITION_RANGE_END] == "2026-01-07"

    skipped, cursor = evaluate(tmp_path, cursor)
    assert isinstance(skipped, dg.SkipReason)

    land(tmp_path, "crm", "2026-01-09", "deals.jsonl")
    later, _ = evaluate(tmp_path, cursor)
    assert (later.tags[PARTITION_RANGE_START], later.tags[PARTITION_RANGE_END]) == (
        "2026-01-09",
        "2026-01-09",
    )
    assert later.run_key != request.run_key


def test_sensor_skips_an_empty_landing_folder(tmp_path):
    result, _ = evaluate(tmp_path)
    assert isinstance(result, dg.SkipReason)


def test_daily_schedule_runs_the_extract_date_of_the_day():
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from orchestration.definitions import defs

    daily_schedule = defs.resolve_schedule_def("boussole_daily")
    assert daily_schedule.execution_timezone == "Europe/Paris"
    # 06:30 in Paris on 2 March is 05:30 UTC: the extract date is Paris's, 2 March.
    tick_time = datetime(2026, 3, 2, 6, 30, tzinfo=ZoneInfo("Europe/Paris"))
    settings = SettingsResource.from_settings(Settings.from_env({PII_KEY_VARIABLE: KEY}))
    with dg.build_schedule_context(
        scheduled_execution_time=tick_time, resources={"settings": settings}
    ) as context:
        request = daily_schedule(context)
    assert request.partition_key == "2026-03-02"
