"""Connections to what the pipeline reads and writes, as Dagster resources."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb

from boussole.ingestion.contracts import PlausibleDates
from boussole.settings import (
    ALERT_WEBHOOK_VARIABLE,
    PII_KEY_VARIABLE,
    POSTGRES_PASSWORD_VARIABLE,
    POSTGRES_READER_PASSWORD_VARIABLE,
    PostgresPublishing,
    Settings,
)


class SettingsResource(dg.ConfigurableResource):
    """Boussole's settings (boussole/settings.py), read from the environment once, when the
    definitions load, for the steps that need them."""

    landing_dir: str
    data_dir: str
    reporting_tz: str
    reporting_currency: str
    pii_key: str
    first_extract_date: str
    plausible_since: str
    plausible_days_ahead: int
    planned_years_ahead: int
    allow_development_key: bool
    refuse_key_restatements: bool = False
    alert_webhook_url: str | None = None
    # The PostgreSQL publication (boussole/postgres_publication.py); off without a host.
    postgres_host: str | None = None
    postgres_port: str = ""
    postgres_user: str = ""
    postgres_password: str = ""
    postgres_database: str = ""
    postgres_schema: str = ""
    postgres_reader_role: str = ""
    postgres_reader_password: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> SettingsResource:
        return cls(
            landing_dir=str(settings.landing_dir),
            data_dir=str(settings.data_dir),
            reporting_tz=settings.reporting_tz,
            reporting_currency=settings.reporting_currency,
            # The UI shows the configuration of resources: for a key set in the environment,
            # the variable's name, which each step reads. The development key is public.
            pii_key=(
                settings.pii_key
                if settings.uses_development_pii_key
                else dg.EnvVar(PII_KEY_VARIABLE)
            ),
            first_extract_date=settings.first_extract_date.isoformat(),
            plausible_since=settings.plausible_dates.since.isoformat(),
            plausible_days_ahead=settings.plausible_dates.days_ahead,
            planned_years_ahead=settings.plausible_dates.planned_years,
            allow_development_key=settings.allow_development_key,
            refuse_key_restatements=settings.refuse_key_restatements,
            # A webhook's address is its secret: the UI shows the variable's name.
            alert_webhook_url=(
                dg.EnvVar(ALERT_WEBHOOK_VARIABLE) if settings.alert_webhook_url else None
            ),
            **_postgres_fields(settings.postgres_publishing),
        )

    def get(self) -> Settings:
        return Settings(
            landing_dir=Path(self.landing_dir),
            data_dir=Path(self.data_dir),
            reporting_tz=self.reporting_tz,
            reporting_currency=self.reporting_currency,
            pii_key=self.pii_key,
            first_extract_date=date.fromisoformat(self.first_extract_date),
            plausible_dates=PlausibleDates(
                since=date.fromisoformat(self.plausible_since),
                days_ahead=self.plausible_days_ahead,
                planned_years=self.planned_years_ahead,
            ),
            allow_development_key=self.allow_development_key,
            refuse_key_restatements=self.refuse_key_restatements,
            alert_webhook_url=self.alert_webhook_url,
            postgres_publishing=(
                PostgresPublishing(
                    host=self.postgres_host,
                    port=self.postgres_port,
                    user=self.postgres_user,
                    password=self.postgres_password,
                    dbname=self.postgres_database,
                    schema=self.postgres_schema,
                    reader_role=self.postgres_reader_role,
                    reader_password=self.postgres_reader_password,
                )
                if self.postgres_host is not None
                else None
            ),
        )


def _postgres_fields(publishing: PostgresPublishing | None) -> dict:
    if publishing is None:
        return {}
    return {
        "postgres_host": publishing.host,
        "postgres_port": publishing.port,
        "postgres_user": publishing.user,
        # Secrets: the UI shows the variables' names, each step reads them.
        "postgres_password": (dg.EnvVar(POSTGRES_PASSWORD_VARIABLE) if publishing.password else ""),
        "postgres_database": publishing.dbname,
        "postgres_schema": publishing.schema,
        "postgres_reader_role": publishing.reader_role,
        "postgres_reader_password": (
            dg.EnvVar(POSTGRES_READER_PASSWORD_VARIABLE) if publishing.reader_password else None
        ),
    }


class WarehouseResource(dg.ConfigurableResource):
    """The DuckDB build warehouse. Only the pipeline opens it; BI reads the published copy."""

    path: str

    @property
    def path_obj(self) -> Path:
        return Path(self.path)

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        conn = duckdb.connect(self.path, read_only=read_only)
        try:
            yield conn
        finally:
            conn.close()


class LandingResource(dg.ConfigurableResource):
    """The landing folder: <landing>/<source>/<extract_date>/<object>.<ext>."""

    path: str

    @property
    def directory(self) -> Path:
        return Path(self.path)
