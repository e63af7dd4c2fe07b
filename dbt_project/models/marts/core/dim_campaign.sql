-- Marketing campaigns: the ad campaigns of the spend file (a campaign is named within its
-- channel) and HubSpot marketing email campaigns (channel EMAIL_MARKETING). The key tells
-- the two systems apart, so equal names never merge.
with campaigns as (
    select distinct
        {{ dbt.concat(["'spend|'", 'channel', "'|'", "coalesce(campaign, '(not set)')"]) }} as campaign_key,
        coalesce(campaign, '(not set)') as campaign_name,
        channel as hubspot_source,
        cast(null as {{ dbt.type_string() }}) as email_campaign_id,
        'spend' as source_system
    from {{ ref('stg_spend__marketing_spend') }}

    union all

    select
        {{ dbt.concat(["'email|'", 'email_campaign_id']) }} as campaign_key,
        coalesce(campaign_name, '(not set)') as campaign_name,
        'EMAIL_MARKETING' as hubspot_source,
        email_campaign_id,
        'email' as source_system
    from {{ ref('stg_crm__email_campaigns') }}
)

select
    campaigns.campaign_key,
    campaigns.campaign_name,
    campaigns.hubspot_source,
    coalesce(channel_groups.channel_group, 'Unassigned') as channel_group,
    coalesce(channel_groups.is_paid, false) as is_paid,
    campaigns.source_system,
    campaigns.email_campaign_id
from campaigns
left join {{ ref('channel_groups') }} as channel_groups
    on campaigns.hubspot_source = channel_groups.hubspot_source
