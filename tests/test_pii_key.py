"""The pseudonymisation key: real entropy, the public development key refused on real data from
every entry point, and one key over time (boussole/pii_key.py)."""

import hashlib
import hmac
import os
import shutil
import subprocess
from datetime import date, datetime
from zoneinfo import ZoneInfo

import dagster as dg
import duckdb
import pytest

from boussole.ingestion.contracts import SAMPLE_MARKER, survey_landing
from boussole.pii_key import (
    KeyRefused,
    claim_key,
    development_key_refusal,
    fingerprint,
    finish_rotation,
    key_refusal,
)
from boussole.publication import publish_marts
from boussole.sample_data import SampleScale, generate
from boussole.settings import Settings, SettingsError
from orchestration.automation import landing_files_sensor
from orchestration.resources import LandingResource, SettingsResource, WarehouseResource
from tests.conftest import BOUSSOLE, FIXTURES

KEY_A = "Xq7-vN2pLr9sKw4TzB6mYd"
KEY_B = "hG5cR8uE1oJ3fW0aZ7kP2s"


@pytest.mark.parametrize(
    "key", [" " * 16, "a" * 40, "abababababababab", "password12345678", "k" * 15]
)
def test_a_key_needs_entropy_not_only_length(key):
    with pytest.raises(SettingsError, match="BOUSSOLE_PII_KEY") as refused:
        Settings.from_env({"BOUSSOLE_PII_KEY": key})
    assert "secrets.token_urlsafe" in str(refused.value)


def test_random_keys_pass_and_the_development_setting_is_a_flag():
    for key in (KEY_A, "0f4c8a1e9b7d3265a0c4e8f1b9d7a365"):
        assert Settings.from_env({"BOUSSOLE_PII_KEY": key}).pii_key == key
    assert Settings.from_env({"BOUSSOLE_ALLOW_DEVELOPMENT_KEY": "1"}).allow_development_key
    assert not Settings.from_env({}).allow_development_key
    with pytest.raises(SettingsError, match="BOUSSOLE_ALLOW_DEVELOPMENT_KEY"):
        Settings.from_env({"BOUSSOLE_ALLOW_DEVELOPMENT_KEY": "maybe"})


def test_the_fingerprint_is_a_keyed_hash_of_a_label_not_the_key():
    label = b"boussole pseudonymisation key fingerprint"
    assert fingerprint(KEY_A) == hmac.new(KEY_A.encode(), label, hashlib.sha256).hexdigest()
    assert fingerprint(KEY_A) != fingerprint(KEY_B)
    assert KEY_A not in fingerprint(KEY_A)


@pytest.fixture
def sample(tmp_path):
    landing = tmp_path / "landing"
    scale = SampleScale(web_events_per_day=20, companies=3, owners=2)
    generate(landing, start=date(2026, 1, 1), end=date(2026, 1, 1), scale=scale)
    return landing


def settings_for(landing, **env):
    return Settings.from_env({"BOUSSOLE_LANDING_DIR": str(landing), **env})


def test_the_development_key_runs_on_the_generated_sample_only(sample):
    # The marker lists what the generator wrote; the survey of the landing folder skips it.
    assert (sample / SAMPLE_MARKER).is_file()
    assert survey_landing(sample) == []
    assert development_key_refusal(settings_for(sample)) is None

    export = sample / "crm" / "2026-01-02" / "contacts.jsonl"
    export.parent.mkdir()
    export.write_text('{"id": "1"}\n')
    refused = development_key_refusal(settings_for(sample))
    assert "crm/2026-01-02/contacts.jsonl is not a file `boussole generate` wrote" in refused
    assert (
        "BOUSSOLE_PII_KEY is not set" in refused and "BOUSSOLE_ALLOW_DEVELOPMENT_KEY=1" in refused
    )
    assert development_key_refusal(settings_for(sample, BOUSSOLE_ALLOW_DEVELOPMENT_KEY="1")) is None
    assert development_key_refusal(settings_for(sample, BOUSSOLE_PII_KEY=KEY_A)) is None

    # A generated file written over (another size) is real data too.
    export.unlink()
    generated = sample / "crm" / "2026-01-01" / "contacts.jsonl"
    generated.write_text(generated.read_text() + '{"id": "real"}\n')
    assert "crm/2026-01-01/contacts.jsonl" in development_key_refusal(settings_for(sample))
    (sample / SAMPLE_MARKER).unlink()
    assert SAMPLE_MARKER in development_key_refusal(settings_for(sample))


def test_the_sensor_and_the_schedule_start_no_run_the_dbt_step_would_refuse(tmp_path):
    from orchestration.definitions import defs

    landing = tmp_path / "landing"
    shutil.copytree(FIXTURES / "landing_small", landing)
    public = SettingsResource.from_settings(settings_for(landing))
    context = dg.build_sensor_context(
        resources={"landing": LandingResource(path=str(landing)), "settings": public}
    )
    skipped = landing_files_sensor(context)
    assert isinstance(skipped, dg.SkipReason)
    assert skipped.skip_message == development_key_refusal(settings_for(landing))
    assert context.cursor is None  # the files are still new for the tick after the key is set

    schedule = defs.resolve_schedule_def("boussole_daily")
    tick = datetime(2026, 1, 5, 6, 30, tzinfo=ZoneInfo("Europe/Paris"))
    with dg.build_schedule_context(
        scheduled_execution_time=tick, resources={"settings": public}
    ) as schedule_context:
        assert schedule(schedule_context).skip_message == skipped.skip_message


def warehouse_with_marts(path):
    with duckdb.connect(str(path)) as conn:
        conn.execute("create schema marts")
        conn.execute("create table marts.dim_contact as select 'x' as email_hash")


def test_one_key_over_time_and_a_rotation_finishes_or_holds_every_run(tmp_path):
    warehouse = tmp_path / "build" / "warehouse.duckdb"
    warehouse.parent.mkdir()
    warehouse_with_marts(warehouse)
    env = {"BOUSSOLE_DATA_DIR": str(tmp_path), "BOUSSOLE_LANDING_DIR": str(tmp_path)}
    a = Settings.from_env({**env, "BOUSSOLE_PII_KEY": KEY_A})
    b = Settings.from_env({**env, "BOUSSOLE_PII_KEY": KEY_B})
    with duckdb.connect(str(warehouse)) as conn:
        assert key_refusal(b, conn) is None  # nothing recorded yet
        claim_key(a, conn, rotating=False)
        assert conn.execute("select fingerprint, rotating from ingestion.pii_key").fetchall() == [
            (fingerprint(KEY_A), False)
        ]
        assert key_refusal(a, conn) is None
        refused = key_refusal(b, conn)
        assert fingerprint(KEY_A)[:12] in refused and fingerprint(KEY_B)[:12] in refused
        assert "boussole rotate-key" in refused and "every pseudonym" in refused
        with pytest.raises(KeyRefused):
            claim_key(b, conn, rotating=False)

        # A rotation to B that has not finished: no run with either key, but the rotation.
        claim_key(b, conn, rotating=True)
        for settings in (a, b):
            assert "did not finish" in key_refusal(settings, conn)
        assert key_refusal(b, conn, rotating=True) is None
        finish_rotation(conn)
        assert key_refusal(b, conn) is None and key_refusal(a, conn) is not None

    # The publication carries the fingerprint: a warehouse made again beside it keeps the key.
    published = publish_marts(warehouse, tmp_path / "published" / "boussole.duckdb").path
    with duckdb.connect(str(published), read_only=True) as conn:
        assert conn.execute("select fingerprint from pii_key").fetchall() == [(fingerprint(KEY_B),)]
    warehouse.unlink()
    with duckdb.connect(str(warehouse)) as conn:
        assert "recorded in the published mart" in key_refusal(a, conn)
        assert key_refusal(b, conn) is None


def test_the_command_line_refuses_before_starting_dagster(tmp_path):
    landing = tmp_path / "landing"
    shutil.copytree(FIXTURES / "landing_small", landing)
    env = {
        **{name: value for name, value in os.environ.items() if not name.startswith("BOUSSOLE")},
        "BOUSSOLE_LANDING_DIR": str(landing),
        "BOUSSOLE_DATA_DIR": str(tmp_path / "data"),
        "DAGSTER_HOME": str(tmp_path / "no_dagster_home"),
    }
    public = subprocess.run([str(BOUSSOLE), "run"], env=env, capture_output=True, text=True)
    assert public.returncode == 2
    assert public.stderr.strip() == f"Refused: {development_key_refusal(settings_for(landing))}"

    warehouse = tmp_path / "data" / "build" / "warehouse.duckdb"
    warehouse.parent.mkdir(parents=True)
    with duckdb.connect(str(warehouse)) as conn:
        claim_key(Settings.from_env({**env, "BOUSSOLE_PII_KEY": KEY_A}), conn, rotating=False)
    for command in ("run", "postgres"):
        other = subprocess.run(
            [str(BOUSSOLE), command],
            env={**env, "BOUSSOLE_PII_KEY": KEY_B},
            capture_output=True,
            text=True,
        )
        assert other.returncode == 2, other.stderr
        assert "is not the key the pseudonyms were made with" in other.stderr
    assert not (tmp_path / "no_dagster_home").exists()


def test_the_dbt_step_refuses_the_public_key_on_real_data(tmp_path):
    """The Dagster UI's way in: the dbt step itself, before dbt runs."""
    from orchestration.definitions import dbt_models

    landing = tmp_path / "landing"
    shutil.copytree(FIXTURES / "landing_small", landing)
    settings = settings_for(landing, BOUSSOLE_DATA_DIR=str(tmp_path / "data"))
    result = dg.materialize(
        [dbt_models],
        resources={
            "settings": SettingsResource.from_settings(settings),
            "warehouse": WarehouseResource(path=str(settings.build_warehouse_path)),
        },
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert development_key_refusal(settings) in failure.event_specific_data.error.message
    assert not (tmp_path / "data" / "dbt").exists()  # dbt never started
