-- Current state of each HubSpot contact: the latest version by updatedAt, whatever the file
-- order; archived contacts leave the current state. Email, names and phone are pseudonymised
-- (keyed hash); the email domain stays in clear for the company match.
-- A table: the pseudonyms are computed once, and no view text holds the key.
{{ config(materialized='table') }}

with versions as (
    select
        {{ json_text('record', ['id']) }} as contact_id,
        {{ pseudonymise(normalised_email(json_text('record', ['properties', 'email']))) }} as email_hash,
        {{ email_domain(json_text('record', ['properties', 'email'])) }} as email_domain,
        {{ pseudonymise(json_text('record', ['properties', 'firstname'])) }} as first_name_hash,
        {{ pseudonymise(json_text('record', ['properties', 'lastname'])) }} as last_name_hash,
        {{ pseudonymise("replace(" ~ json_text('record', ['properties', 'phone']) ~ ", ' ', '')") }} as phone_hash,
        {{ json_text('record', ['properties', 'lifecyclestage']) }} as lifecycle_stage,
        {{ json_text('record', ['properties', 'hs_analytics_source']) }} as analytics_source,
        {{ json_text('record', ['properties', 'hs_analytics_source_data_1']) }} as analytics_source_detail,
        {{ json_text('record', ['properties', 'country']) }} as country,
        {{ json_text('record', ['properties', 'associatedcompanyid']) }} as company_id,
        {{ json_text('record', ['properties', 'hubspot_owner_id']) }} as owner_id,
        {{ vendor_timestamp(json_text('record', ['properties', 'createdate'])) }} as created_at,
        {{ vendor_timestamp(json_text('record', ['properties', 'hs_lifecyclestage_lead_date'])) }} as became_lead_at,
        {{ vendor_timestamp(json_text('record', ['properties', 'hs_lifecyclestage_marketingqualifiedlead_date'])) }}
            as became_mql_at,
        {{ vendor_timestamp(json_text('record', ['properties', 'hs_lifecyclestage_salesqualifiedlead_date'])) }}
            as became_sql_at,
        {{ vendor_timestamp(json_text('record', ['properties', 'hs_lifecyclestage_customer_date'])) }}
            as became_customer_at,
        {{ hubspot_version_columns() }}
    from {{ source('crm', 'contacts') }}
),

ranked as (
    {{ rank_versions('versions', 'contact_id', 'updated_at') }}
)

select
    contact_id,
    email_hash,
    email_domain,
    first_name_hash,
    last_name_hash,
    phone_hash,
    lifecycle_stage,
    analytics_source,
    analytics_source_detail,
    country,
    company_id,
    owner_id,
    created_at,
    became_lead_at,
    became_mql_at,
    became_sql_at,
    became_customer_at,
    updated_at,
    _extract_date,
    _source_file
from ranked
where version_rank = 1 and not is_archived
