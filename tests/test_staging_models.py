"""Staging models over a small hand-written landing folder (tests/fixtures/staging).

The fixture is loaded with the project's own loader into a temporary DuckDB file, then
`dbt build --select staging` runs once (models and their data tests); every expected value
below was worked out by hand from the fixture files.
"""

import hashlib
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from tests.conftest import load_landing, run_dbt

TESTS_DIR = Path(__file__).resolve().parent
FIXTURE_LANDING = TESTS_DIR / "fixtures" / "staging"
PII_KEY = "test-key-for-staging-tests"


def keyed_hash(value: str) -> str:
    """The pseudonym computed outside the warehouse: sha256 of key | value, as hex."""
    return hashlib.sha256(f"{PII_KEY}|{value}".encode()).hexdigest()


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> duckdb.DuckDBPyConnection:
    root = tmp_path_factory.mktemp("staging")
    warehouse_path = root / "warehouse.duckdb"
    load_landing(warehouse_path, FIXTURE_LANDING)

    result = run_dbt(
        # Only the tests whose parents are all staging models (not mart tests on staging refs).
        *("build", "--select", "staging", "--indirect-selection", "cautious"),
        warehouse=warehouse_path,
        target=root / "target",
        pii_key=PII_KEY,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
    # dbt scrubs DBT_ENV_SECRET_* values from what it prints.
    assert PII_KEY not in result.stdout

    conn = duckdb.connect(str(warehouse_path), read_only=True)
    yield conn
    conn.close()


def rows(conn: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> list[tuple]:
    return conn.execute(sql, params or []).fetchall()


def test_current_contact_is_the_newest_version_whatever_the_file_order(warehouse):
    # Contact 101: the 2026-01-05 file holds updatedAt 2026-01-04 (MQL, example.com); the
    # later 2026-01-06 file holds the older updatedAt 2026-01-02 (lead, old-mail.fr).
    # Contact 103 is archived in its newest version.
    assert rows(
        warehouse,
        "select contact_id, lifecycle_stage, email_domain, company_id, _source_file "
        "from staging.stg_crm__contacts order by contact_id",
    ) == [
        ("101", "marketingqualifiedlead", "example.com", "201", "crm/2026-01-05/contacts.jsonl"),
        ("102", "lead", "acme.fr", None, "crm/2026-01-05/contacts.jsonl"),
    ]
    # hs_lifecyclestage_lead_date is epoch milliseconds as text: 2026-01-02T08:00:00Z.
    became_lead_at = rows(
        warehouse,
        "select strftime(became_lead_at at time zone 'UTC', '%Y-%m-%d %H:%M:%S') "
        "from staging.stg_crm__contacts where contact_id = '101'",
    )
    assert became_lead_at == [("2026-01-02 08:00:00",)]


def test_contact_pseudonyms_are_keyed_hashes_of_normalised_values(warehouse):
    # The contact's email is " Anne.Martin@Example.COM " in the file.
    email_hash, first_name_hash, last_name_hash, phone_hash = rows(
        warehouse,
        "select email_hash, first_name_hash, last_name_hash, phone_hash "
        "from staging.stg_crm__contacts where contact_id = '101'",
    )[0]
    assert email_hash == keyed_hash("anne.martin@example.com")
    assert first_name_hash == keyed_hash("Anne")
    assert last_name_hash == keyed_hash("Martin")
    assert phone_hash == keyed_hash("+33612345678")
    assert rows(
        warehouse, "select phone_hash from staging.stg_crm__contacts where contact_id = '102'"
    ) == [(None,)]


def test_same_email_in_another_case_gets_the_same_pseudonym_across_sources(warehouse):
    # Zendesk requester 401 is "ANNE.MARTIN@EXAMPLE.COM"; the email events' recipient is
    # "Anne.Martin@Example.com"; the CRM contact is " Anne.Martin@Example.COM ".
    contact_hash = rows(
        warehouse, "select email_hash from staging.stg_crm__contacts where contact_id = '101'"
    )[0][0]
    requester = rows(
        warehouse,
        "select users.email_hash, users.email_domain from staging.stg_support__tickets as tickets "
        "join staging.stg_support__users as users on users.user_id = tickets.requester_id "
        "where tickets.ticket_id = 9001",
    )
    assert requester == [(contact_hash, "example.com")]
    recipients = rows(
        warehouse,
        "select distinct recipient_hash, recipient_email_domain from staging.stg_crm__email_events",
    )
    assert recipients == [(contact_hash, "example.com")]


def test_no_staging_model_holds_personal_data_in_clear(warehouse):
    text_columns = rows(
        warehouse,
        "select table_name, column_name from information_schema.columns "
        "where table_schema = 'staging' and table_name like 'stg\\_%' escape '\\' "
        "and data_type = 'VARCHAR' order by table_name, column_name",
    )
    new_models = {
        "stg_crm__contacts", "stg_crm__companies", "stg_crm__owners", "stg_crm__owner_teams",
        "stg_crm__calls", "stg_crm__emails", "stg_crm__meetings", "stg_crm__email_events",
        "stg_crm__email_campaigns", "stg_crm__feedback_submissions",
        "stg_support__ticket_comments", "stg_support__users", "stg_support__groups",
        "stg_support__organizations", "stg_support__organization_domains",
        "stg_support__satisfaction_ratings", "stg_spend__marketing_spend", "stg_spend__sales_costs",
    }  # fmt: skip
    assert new_models <= {table for table, _ in text_columns}
    clear_values = ("%@%", "%Anne%", "%Martin%", "%Durand%", "%Garnier%", "%+33%", "% 6 12 %")
    for table, column in text_columns:
        conditions = " or ".join(f'"{column}" like ?' for _ in clear_values)
        found = rows(
            warehouse,
            f'select "{column}" from staging."{table}" where {conditions} limit 1',
            list(clear_values),
        )
        assert found == [], f"{table}.{column} holds personal data in clear: {found}"
    # The key is rendered into the pseudonymising models: they are tables, so no SQL text
    # stored in the warehouse holds it.
    views_with_key = f"select view_name from duckdb_views() where sql like '%{PII_KEY}%'"
    assert rows(warehouse, views_with_key) == []


def test_companies_drop_archived_and_lower_case_the_domain(warehouse):
    assert rows(
        warehouse,
        "select company_id, company_domain, employee_count from staging.stg_crm__companies",
    ) == [("201", "example.com", 120)]


def test_owners_and_their_current_teams(warehouse):
    # 301 (two teams), 302 (teams replaced by its newer version), 303 (no team); 304 archived.
    assert rows(warehouse, "select owner_id from staging.stg_crm__owners order by 1") == [
        ("301",),
        ("302",),
        ("303",),
    ]
    assert rows(
        warehouse,
        "select owner_id, team_id, team_name, is_primary_team from staging.stg_crm__owner_teams "
        "order by owner_id, team_id",
    ) == [
        ("301", "4101", "Ventes Île-de-France", True),
        ("301", "4102", "Ventes Régions", False),
        ("302", "4102", "Ventes Régions", True),
        ("302", "4103", "Ventes International", False),
    ]
    assert rows(
        warehouse, "select email_hash from staging.stg_crm__owners where owner_id = '301'"
    ) == [(keyed_hash("claire.dubois@boussole-demo.fr"),)]


def test_engagements_events_and_surveys(warehouse):
    assert rows(
        warehouse, "select call_id, call_direction, call_duration_ms from staging.stg_crm__calls"
    ) == [("1001", "OUTBOUND", 120000)]
    assert rows(warehouse, "select email_id, email_direction from staging.stg_crm__emails") == [
        ("1101", "EMAIL")
    ]
    # The meeting's newer version sets the outcome; hs_timestamp is epoch ms as text.
    assert rows(
        warehouse,
        "select meeting_id, meeting_outcome, "
        "strftime(activity_at at time zone 'UTC', '%Y-%m-%d %H:%M') from staging.stg_crm__meetings",
    ) == [("1201", "COMPLETED", "2026-01-06 14:00")]
    # e-0002 was delivered twice: three events, each once.
    assert rows(
        warehouse,
        "select email_event_id, event_type, strftime(event_at at time zone 'UTC', '%H:%M:%S'), "
        "email_campaign_id, sent_by_id from staging.stg_crm__email_events order by event_at",
    ) == [
        ("e-0001", "SENT", "09:00:00", "501", "e-0001"),
        ("e-0002", "DELIVERED", "09:00:05", "501", "e-0001"),
        ("e-0003", "OPEN", "18:30:00", "501", "e-0001"),
    ]
    assert rows(
        warehouse, "select email_campaign_id, campaign_type from staging.stg_crm__email_campaigns"
    ) == [("501", "BATCH_EMAIL")]
    assert rows(
        warehouse,
        "select submission_id, survey_type, response_value, contact_id "
        "from staging.stg_crm__feedback_submissions order by 1",
    ) == [("601", "NPS", 9, "101"), ("602", "CSAT", 4, "102")]


def test_support_users_groups_comments_and_ratings(warehouse):
    # 402 changed role in a later file; 403 was deleted (active false) in a later file.
    assert rows(
        warehouse, "select user_id, user_role from staging.stg_support__users order by 1"
    ) == [(401, "end-user"), (402, "admin")]
    assert rows(
        warehouse, "select name_hash from staging.stg_support__users where user_id = 401"
    ) == [(keyed_hash("Anne Martin"),)]
    assert rows(warehouse, "select count(*) from staging.stg_support__groups") == [(2,)]
    # Comment 802 was delivered twice.
    comments = "select comment_id, is_public from staging.stg_support__ticket_comments order by 1"
    assert rows(warehouse, comments) == [(801, True), (802, True), (803, False)]
    ratings = "select satisfaction_rating_id, score from staging.stg_support__satisfaction_ratings"
    assert rows(warehouse, ratings) == [(901, "good")]


def test_organisations_and_their_domains(warehouse):
    assert rows(
        warehouse,
        "select organization_id, first_domain_name from staging.stg_support__organizations "
        "order by 1",
    ) == [(501, "example.com"), (502, None), (503, "acme.fr")]
    # 503's newer version adds ACME.com; 502 has no domain.
    assert rows(
        warehouse,
        "select organization_id, domain_name from staging.stg_support__organization_domains "
        "order by 1, 2",
    ) == [(501, "example.com"), (501, "example.org"), (503, "acme.com"), (503, "acme.fr")]
    # The identity join: organisation domain = CRM company domain.
    assert rows(
        warehouse,
        "select domains.organization_id, companies.company_id "
        "from staging.stg_support__organization_domains as domains "
        "join staging.stg_crm__companies as companies "
        "on companies.company_domain = domains.domain_name",
    ) == [(501, "201")]


def test_restated_marketing_spend_and_final_sales_costs_win(warehouse):
    assert rows(
        warehouse,
        "select cast(spend_date as varchar), channel, campaign, spend, currency, "
        "cast(_extract_date as varchar) "
        "from staging.stg_spend__marketing_spend order by 1, 2",
    ) == [
        ("2026-01-04", "PAID_SEARCH", "Marque FR", Decimal("103.50"), "EUR", "2026-01-06"),
        ("2026-01-04", "PAID_SOCIAL", "Prospection", Decimal("50.00"), "EUR", "2026-01-05"),
        ("2026-01-05", "PAID_SEARCH", "Marque FR", Decimal("110.00"), "EUR", "2026-01-06"),
        ("2026-01-05", "PAID_SOCIAL", "Prospection", Decimal("55.00"), "EUR", "2026-01-06"),
    ]
    assert rows(
        warehouse,
        "select cast(month_start as varchar), team_name, cost_amount, currency "
        "from staging.stg_spend__sales_costs order by 1, 2",
    ) == [
        ("2026-01-01", "Ventes International", Decimal("15321.09"), "GBP"),
        ("2026-01-01", "Ventes Régions", Decimal("21456.78"), "EUR"),
        ("2026-02-01", "Ventes Régions", Decimal("20000.00"), "EUR"),
    ]
