-- Current state of each HubSpot contact: the latest version by updatedAt, whatever the file
-- order; archived contacts leave the current state. Email, names and phone are pseudonymised
-- (keyed hash); the email domain stays in clear for the company match.
-- A table: the pseudonyms are computed once, and no view text holds the key. Each record is
-- parsed once for its 18 fields (json_record_fields).
{{ config(materialized='table') }}

with records as (
    {{ json_record_fields(source('crm', 'contacts'), {
        'contact_id': ['id'],
        'email': ['properties', 'email'],
        'first_name': ['properties', 'firstname'],
        'last_name': ['properties', 'lastname'],
        'phone': ['properties', 'phone'],
        'lifecycle_stage': ['properties', 'lifecyclestage'],
        'analytics_source': ['properties', 'hs_analytics_source'],
        'analytics_source_detail': ['properties', 'hs_analytics_source_data_1'],
        'country': ['properties', 'country'],
        'company_id': ['properties', 'associatedcompanyid'],
        'owner_id': ['properties', 'hubspot_owner_id'],
        'created': ['properties', 'createdate'],
        'became_lead': ['properties', 'hs_lifecyclestage_lead_date'],
        'became_mql': ['properties', 'hs_lifecyclestage_marketingqualifiedlead_date'],
        'became_sql': ['properties', 'hs_lifecyclestage_salesqualifiedlead_date'],
        'became_customer': ['properties', 'hs_lifecyclestage_customer_date'],
        'updated': ['updatedAt'],
        'archived': ['archived'],
    }) }}
),

-- The current version is chosen on the text read from the records; only it is pseudonymised
-- and typed.
versions as (
    select
        records.*,
        {{ hubspot_version_state('records.updated', 'records.archived') }}
    from records
),

ranked as (
    {{ rank_versions('versions', 'contact_id', 'updated_at') }}
)

select
    contact_id,
    {{ pseudonymise(normalised_email('email')) }} as email_hash,
    {{ email_domain('email') }} as email_domain,
    {{ pseudonymise('first_name') }} as first_name_hash,
    {{ pseudonymise('last_name') }} as last_name_hash,
    {{ pseudonymise("replace(phone, ' ', '')") }} as phone_hash,
    lifecycle_stage,
    analytics_source,
    analytics_source_detail,
    country,
    company_id,
    owner_id,
    {{ vendor_timestamp('created') }} as created_at,
    {{ vendor_timestamp('became_lead') }} as became_lead_at,
    {{ vendor_timestamp('became_mql') }} as became_mql_at,
    {{ vendor_timestamp('became_sql') }} as became_sql_at,
    {{ vendor_timestamp('became_customer') }} as became_customer_at,
    updated_at,
    _extract_date,
    _source_file,
    _record_number
from ranked
where version_rank = 1 and not is_archived
