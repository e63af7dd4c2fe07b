"""Configuration from environment variables, with safe defaults (see README, "Configuration")."""

from __future__ import annotations

import logging
import math
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from boussole.ingestion.contracts import DEFAULT_PLAUSIBLE_DATES, PlausibleDates

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"

PII_KEY_VARIABLE = "BOUSSOLE_PII_KEY"
# Only for local development: pseudonyms made with a public key can be reversed by anyone
# who guesses the inputs, so a run refuses it on anything but the generated sample
# (boussole/pii_key.py) unless this setting allows it.
DEVELOPMENT_PII_KEY = "boussole-development-key-do-not-use-in-production"
ALLOW_DEVELOPMENT_KEY_VARIABLE = "BOUSSOLE_ALLOW_DEVELOPMENT_KEY"
# Restatements of key KPIs wait for `boussole accept-restatements` (boussole/restatements.py).
REFUSE_KEY_RESTATEMENTS_VARIABLE = "BOUSSOLE_REFUSE_KEY_RESTATEMENTS"
# Where new alerts are posted (a Slack or Teams incoming webhook; boussole/alerts.py).
ALERT_WEBHOOK_VARIABLE = "BOUSSOLE_ALERT_WEBHOOK_URL"
# The published mart is also loaded into PostgreSQL (boussole/postgres_publication.py) when on.
POSTGRES_PUBLISH_VARIABLE = "BOUSSOLE_PG_PUBLISH"
DASHBOARD_VARIABLE = "BOUSSOLE_DASHBOARD"
POSTGRES_PASSWORD_VARIABLE = "BOUSSOLE_PG_PASSWORD"
POSTGRES_READER_PASSWORD_VARIABLE = "BOUSSOLE_PG_READER_PASSWORD"
MINIMUM_PII_KEY_LENGTH = 16
MINIMUM_PII_KEY_BITS = 64
NEW_PII_KEY_HINT = "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"

logger = logging.getLogger("boussole")


class SettingsError(ValueError):
    """A configuration value is unusable; the message names the variable."""


def _plausible_dates(env: os._Environ[str] | dict[str, str]) -> PlausibleDates:
    """The window a landed date must fall in (boussole/ingestion/contracts.py)."""
    since_text = env.get("BOUSSOLE_PLAUSIBLE_SINCE") or DEFAULT_PLAUSIBLE_DATES.since.isoformat()
    try:
        since = date.fromisoformat(since_text)
    except ValueError as error:
        raise SettingsError(
            f"BOUSSOLE_PLAUSIBLE_SINCE={since_text!r} is not a YYYY-MM-DD date"
        ) from error
    counts = {}
    for variable, default in (
        ("BOUSSOLE_PLAUSIBLE_DAYS_AHEAD", DEFAULT_PLAUSIBLE_DATES.days_ahead),
        ("BOUSSOLE_PLANNED_YEARS_AHEAD", DEFAULT_PLAUSIBLE_DATES.planned_years),
    ):
        text = env.get(variable) or str(default)
        if not text.isdigit():
            raise SettingsError(f"{variable}={text!r} is not a whole number (0 or more)")
        counts[variable] = int(text)
    return PlausibleDates(
        since=since,
        days_ahead=counts["BOUSSOLE_PLAUSIBLE_DAYS_AHEAD"],
        planned_years=counts["BOUSSOLE_PLANNED_YEARS_AHEAD"],
    )


def estimated_key_bits(key: str) -> float:
    """The key's length times the Shannon entropy of its own characters: 0 for sixteen spaces,
    16 for "abababababababab", about 210 for secrets.token_urlsafe(32). A floor, not a proof:
    it refuses keys made of few distinct characters, not a guessable phrase."""
    counts = Counter(key)
    return -sum(n * math.log2(n / len(key)) for n in counts.values())


def _pii_key(env: os._Environ[str] | dict[str, str]) -> str:
    pii_key = env.get(PII_KEY_VARIABLE) or DEVELOPMENT_PII_KEY
    # dbt masks the key wherever it appears in its logs, node names included: a short key
    # would mangle them (and is weak anyway).
    if len(pii_key) < MINIMUM_PII_KEY_LENGTH:
        raise SettingsError(
            f"{PII_KEY_VARIABLE} is {len(pii_key)} characters long; use a random secret of "
            f"at least {MINIMUM_PII_KEY_LENGTH} characters, for example from {NEW_PII_KEY_HINT}"
        )
    bits = estimated_key_bits(pii_key)
    if bits < MINIMUM_PII_KEY_BITS:
        raise SettingsError(
            f"{PII_KEY_VARIABLE} is too predictable: its {len(pii_key)} characters carry about "
            f"{bits:.0f} bits of entropy, below {MINIMUM_PII_KEY_BITS} (few distinct characters, "
            f"or repeated ones); use a random secret, for example from {NEW_PII_KEY_HINT}"
        )
    return pii_key


def _flag(env: os._Environ[str] | dict[str, str], variable: str) -> bool:
    text = (env.get(variable) or "").strip().lower()
    if text not in ("", "0", "1", "false", "true", "no", "yes"):
        raise SettingsError(f"{variable}={text!r} is not 1 or 0 (true or false, yes or no)")
    return text in ("1", "true", "yes")


@dataclass(frozen=True)
class PostgresPublishing:
    """Where the published mart is loaded in PostgreSQL, and the role BI tools read it as."""

    host: str
    port: str
    user: str
    dbname: str
    # The schema readers query; each publication replaces it whole.
    schema: str = "published"
    reader_role: str = "boussole_reader"
    password: str = field(default="", repr=False)
    # Unset: the role keeps the password it has (or logs in another way, set by the DBA).
    reader_password: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, env: os._Environ[str] | dict[str, str]) -> PostgresPublishing | None:
        if not _flag(env, POSTGRES_PUBLISH_VARIABLE):
            return None
        # The same connection variables as `boussole postgres` (imported here: that module
        # imports this one).
        from boussole.dbt_invocation import postgres_connection

        names = {}
        for variable, default in (
            ("BOUSSOLE_PG_SCHEMA", "published"),
            ("BOUSSOLE_PG_READER_ROLE", "boussole_reader"),
        ):
            names[variable] = env.get(variable) or default
            # Up to 50 characters: the publication adds __loading and __previous to the schema's.
            if not re.fullmatch(r"[a-z_][a-z0-9_]{0,49}", names[variable]):
                raise SettingsError(
                    f"{variable}={names[variable]!r} is not a lower-case PostgreSQL name "
                    "(letters, digits and underscores, 50 at most)"
                )
        return cls(
            **postgres_connection(env),
            schema=names["BOUSSOLE_PG_SCHEMA"],
            reader_role=names["BOUSSOLE_PG_READER_ROLE"],
            reader_password=env.get(POSTGRES_READER_PASSWORD_VARIABLE) or None,
        )

    def connection_parameters(self) -> dict[str, str]:
        """For psycopg2.connect (libpq's keywords)."""
        return {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "password": self.password,
            "dbname": self.dbname,
        }


@dataclass(frozen=True)
class Settings:
    landing_dir: Path
    data_dir: Path
    reporting_tz: str
    reporting_currency: str
    pii_key: str
    first_extract_date: date
    plausible_dates: PlausibleDates = DEFAULT_PLAUSIBLE_DATES
    # The development key may pseudonymise a landing folder other than the generated sample.
    allow_development_key: bool = False
    refuse_key_restatements: bool = False
    alert_webhook_url: str | None = None
    postgres_publishing: PostgresPublishing | None = None
    # Rebuild the Evidence dashboard after each publication (the kpi_dashboard asset): on with
    # BOUSSOLE_DASHBOARD=1 (`python3 dev.py run` sets it); off by default, so that runs with no
    # use for a site (the tests', the benchmark's) do not pay for a Node build.
    build_dashboard: bool = False

    @classmethod
    def from_env(cls, environ: os._Environ[str] | dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        data_dir = Path(env.get("BOUSSOLE_DATA_DIR") or PROJECT_ROOT / "data").resolve()
        landing_dir = Path(env.get("BOUSSOLE_LANDING_DIR") or data_dir / "landing").resolve()

        reporting_tz = env.get("BOUSSOLE_REPORTING_TZ") or "Europe/Paris"
        try:
            ZoneInfo(reporting_tz)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise SettingsError(
                f"BOUSSOLE_REPORTING_TZ={reporting_tz!r} is not an IANA time zone "
                "(for example Europe/Paris)"
            ) from error

        currency = (env.get("BOUSSOLE_REPORTING_CURRENCY") or "EUR").upper()
        if not re.fullmatch(r"[A-Z]{3}", currency):
            raise SettingsError(
                f"BOUSSOLE_REPORTING_CURRENCY={currency!r} is not an ISO 4217 code "
                "(for example EUR)"
            )

        raw_first_date = env.get("BOUSSOLE_FIRST_EXTRACT_DATE") or "2024-01-01"
        try:
            first_extract_date = date.fromisoformat(raw_first_date)
        except ValueError as error:
            raise SettingsError(
                f"BOUSSOLE_FIRST_EXTRACT_DATE={raw_first_date!r} is not a YYYY-MM-DD date"
            ) from error

        return cls(
            plausible_dates=_plausible_dates(env),
            landing_dir=landing_dir,
            data_dir=data_dir,
            reporting_tz=reporting_tz,
            reporting_currency=currency,
            pii_key=_pii_key(env),
            first_extract_date=first_extract_date,
            allow_development_key=_flag(env, ALLOW_DEVELOPMENT_KEY_VARIABLE),
            refuse_key_restatements=_flag(env, REFUSE_KEY_RESTATEMENTS_VARIABLE),
            alert_webhook_url=env.get(ALERT_WEBHOOK_VARIABLE) or None,
            postgres_publishing=PostgresPublishing.from_env(env),
            build_dashboard=_flag(env, DASHBOARD_VARIABLE),
        )

    @property
    def uses_development_pii_key(self) -> bool:
        return self.pii_key == DEVELOPMENT_PII_KEY

    def warn_if_insecure(self) -> None:
        if self.uses_development_pii_key:
            logger.warning(
                "BOUSSOLE_PII_KEY is not set: personal data is pseudonymised with the public "
                "development key, which anyone can reverse. Set BOUSSOLE_PII_KEY to a secret "
                "before loading real exports (a run refuses the public key on anything but the "
                "generated sample)."
            )

    @cached_property
    def build_warehouse_path(self) -> Path:
        """The DuckDB file the pipeline writes; never read by BI tools."""
        return self.data_dir / "build" / "warehouse.duckdb"

    @cached_property
    def dbt_state_dir(self) -> Path:
        """The manifest and settings of the last successful dbt build of the warehouse, which
        the next build compares with to reuse what did not change (boussole/dbt_reuse.py)."""
        return self.build_warehouse_path.parent / "dbt_state"

    @cached_property
    def published_mart_path(self) -> Path:
        """The audited mart that analysts and BI tools read; replaced atomically."""
        return self.data_dir / "published" / "boussole.duckdb"

    @cached_property
    def history_path(self) -> Path:
        """Every publication, append-only (boussole/history.py): out of reach of any rebuild."""
        return self.data_dir / "history" / "publications.duckdb"

    @cached_property
    def quality_results_dir(self) -> Path:
        return self.data_dir / "quality"

    @property
    def run_logs_dir(self) -> Path:
        """What the steps of a `boussole run` print, one file per run."""
        return self.data_dir / "logs"
