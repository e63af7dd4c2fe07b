-- One row per marketing email campaign and recipient, from the events of that send. The send
-- date is the SENT event's (the first event's when the SENT event is missing). Flags say
-- whether at least one event of the kind happened (unique opens and clicks).
with sends as (
    select
        email_campaign_id,
        recipient_hash,
        min(case when event_type = 'SENT' then event_at end) as sent_at,
        min(event_at) as first_event_at,
        {{ dbt.bool_or("event_type = 'DELIVERED'") }} as is_delivered,
        {{ dbt.bool_or("event_type = 'OPEN'") }} as is_opened,
        {{ dbt.bool_or("event_type = 'CLICK'") }} as is_clicked,
        {{ dbt.bool_or("event_type = 'BOUNCE'") }} as is_bounced,
        {{ dbt.bool_or("event_type = 'UNSUBSCRIBED'") }} as is_unsubscribed
    from {{ ref('stg_crm__email_events') }}
    where email_campaign_id is not null and recipient_hash is not null
    group by email_campaign_id, recipient_hash
),

-- Two contacts may share an address: the most recently updated one gives the country.
recipient_contacts as (
    select
        email_hash,
        country,
        row_number() over (partition by email_hash order by updated_at desc nulls last, contact_id asc) as contact_rank
    from {{ ref('stg_crm__contacts') }}
    where email_hash is not null
)

select
    sends.email_campaign_id,
    campaigns.campaign_key,
    campaigns.campaign_name,
    sends.recipient_hash,
    {{ reporting_date('coalesce(sends.sent_at, sends.first_event_at)') }} as send_date,
    sends.is_delivered,
    sends.is_opened,
    sends.is_clicked,
    sends.is_bounced,
    sends.is_unsubscribed,
    coalesce(recipient_contacts.country, '(not set)') as country
from sends
left join {{ ref('dim_campaign') }} as campaigns
    on campaigns.source_system = 'email' and sends.email_campaign_id = campaigns.email_campaign_id
left join recipient_contacts
    on sends.recipient_hash = recipient_contacts.email_hash and recipient_contacts.contact_rank = 1
