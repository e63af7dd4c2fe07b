"""A dbt-duckdb plugin (dbt_project/profiles.yml): the pseudonymisation key reaches each DuckDB
session dbt opens as the variable PII_KEY_SESSION_VARIABLE, read from the environment, which
dbt_project/macros/pii.sql reads with getvariable(). The key is thus in no compiled SQL, no dbt
artifact and no log: only in the environment of the dbt process and in its sessions' memory.
"""

import os

from dbt.adapters.duckdb.plugins import BasePlugin

from boussole.settings import PII_KEY_VARIABLE

# Named in dbt_project/macros/pii.sql.
PII_KEY_SESSION_VARIABLE = "boussole_pii_key"


class Plugin(BasePlugin):
    def configure_cursor(self, cursor) -> None:
        # Variables belong to a session, and every cursor of dbt-duckdb is one. Unset, the
        # models that pseudonymise fail with the macro's message (not silently null hashes).
        key = os.environ.get(PII_KEY_VARIABLE)
        if key:
            cursor.execute(f"set variable {PII_KEY_SESSION_VARIABLE} = ?", [key])
