-- One row per current contact with its acquisition channel and funnel dates (reporting-zone
-- dates). A contact without a lead date became a lead when created (HubSpot leaves the date
-- empty for contacts created directly at a later stage).
with contacts as (
    select
        contacts.*,
        {{ reporting_date('contacts.created_at') }} as created_date,
        coalesce(
            {{ reporting_date('contacts.became_lead_at') }}, {{ reporting_date('contacts.created_at') }}
        ) as lead_date,
        {{ reporting_date('contacts.became_mql_at') }} as mql_date,
        {{ reporting_date('contacts.became_sql_at') }} as sql_date,
        {{ reporting_date('contacts.became_customer_at') }} as customer_date
    from {{ ref('stg_crm__contacts') }} as contacts
)

select
    contacts.contact_id,
    contacts.email_hash,
    contacts.company_id,
    contacts.owner_id,
    contacts.country,
    contacts.analytics_source as original_source,
    contacts.analytics_source_detail as original_source_detail,
    coalesce(channel_groups.channel_group, 'Unassigned') as channel_group,
    coalesce(channel_groups.is_paid, false) as is_paid_channel,
    contacts.lifecycle_stage,
    contacts.created_date,
    contacts.lead_date,
    contacts.mql_date,
    contacts.sql_date,
    contacts.customer_date,
    coalesce(
        contacts.customer_date is not null
        and {{ dbt.datediff('contacts.lead_date', 'contacts.customer_date', 'day') }}
        <= 90,
        false
    ) as is_customer_within_90d_of_lead
from contacts
left join {{ ref('channel_groups') }} as channel_groups
    on contacts.analytics_source = channel_groups.hubspot_source
