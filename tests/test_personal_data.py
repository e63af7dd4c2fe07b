"""The published mart holds no personal data in clear: every text column of every published
table is scanned for the emails, names and phone numbers the generated sample landed.

DuckDB only: the mart is published to DuckDB (boussole/publication.py); a PostgreSQL
publication does not exist yet (issue 19), and this scan should cover it once it does.
"""

import hashlib
import json
import re

import duckdb
import pytest

from boussole.sql import quote_identifier

# Reads the generated sample's runs (conftest sample_history).
pytestmark = pytest.mark.e2e

# Where the vendors' records hold personal data, listed here from their shapes (HubSpot, Zendesk),
# not from the project's own list.
PERSONAL_FIELDS = {
    ("crm", "contacts"): ("properties.email", "properties.firstname", "properties.lastname"),
    ("crm", "owners"): ("email", "firstName", "lastName"),
    ("crm", "email_events"): ("recipient",),
    ("support", "users"): ("name", "email"),
}
FULL_NAMES = {
    ("crm", "contacts"): ("properties.firstname", "properties.lastname"),
    ("crm", "owners"): ("firstName", "lastName"),
}
PHONES = {("crm", "contacts"): "properties.phone"}
EMAIL = re.compile(r"[^\s@|]+@[^\s@|]+\.[a-z]{2,}", re.IGNORECASE)


def field(record: dict, path: str):
    for key in path.split("."):
        record = record.get(key) if isinstance(record, dict) else None
    return record


def landed_personal_values(landing) -> tuple[set[str], set[str]]:
    """From every landed record, lower-cased: what a published text may not contain (emails,
    phone numbers, full names), and what it may not be (a first or last name alone)."""
    contained, whole = set(), set()
    for (source, name), paths in PERSONAL_FIELDS.items():
        for path in landing.glob(f"{source}/*/{name}*.jsonl"):
            for line in path.read_text().splitlines():
                record = json.loads(line)
                texts = [field(record, p) for p in paths]
                full_name = [field(record, p) for p in FULL_NAMES.get((source, name), ())]
                texts.append(" ".join(full_name) if full_name and all(full_name) else None)
                phone = field(record, PHONES.get((source, name), "-"))
                if phone:
                    texts += [phone, phone.replace(" ", "")]
                for text in (t.strip().lower() for t in texts if isinstance(t, str) and t.strip()):
                    (contained if "@" in text or " " in text or "+" in text else whole).add(text)
    return contained, whole


def test_no_published_text_holds_a_landed_email_name_or_phone(sample_history):
    workspace = sample_history.workspace
    contained, whole = landed_personal_values(workspace.landing)
    emails = {value for value in contained if "@" in value}
    # Enough of each kind for the scan to mean something.
    assert len(emails) > 100 and any(v.startswith("+33") for v in contained) and len(whole) > 50

    with duckdb.connect(str(workspace.published), read_only=True) as conn:
        columns = conn.execute(
            "select table_name, column_name from duckdb_columns() "
            "where database_name = current_database() and not internal "
            "and data_type in ('VARCHAR', 'JSON') order by all"
        ).fetchall()
        texts = {
            (table, column): {
                value.lower()
                for (value,) in conn.execute(
                    f"select distinct {quote_identifier(column)}::varchar "
                    f"from {quote_identifier(table)}"
                ).fetchall()
                if value is not None
            }
            for table, column in columns
        }
        # The pseudonyms are there, made from the landed emails with the run's key.
        key = workspace.env["BOUSSOLE_PII_KEY"]
        pseudonyms = {hashlib.sha256(f"{key}|{email}".encode()).hexdigest() for email in emails}
        assert len(texts[("dim_contact", "email_hash")] & pseudonyms) > 100

    assert len(columns) > 50
    inside = re.compile("|".join(re.escape(v) for v in sorted(contained, key=len, reverse=True)))
    found = {
        (table, column, value)
        for (table, column), values in texts.items()
        for value in values
        if value in whole or EMAIL.search(value) or inside.search(value)
    }
    assert found == set()
