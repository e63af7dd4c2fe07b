-- Advertising spend per day, channel and campaign, converted at the FX rate of the spend
-- date. The channel is a HubSpot original source, so spend and CRM share channel groups.
select
    spend.spend_date,
    campaigns.campaign_key,
    spend.channel as hubspot_source,
    campaigns.channel_group,
    campaigns.is_paid,
    spend.campaign,
    spend.spend as spend_original,
    spend.currency as currency_original,
    {{ to_reporting_currency('spend.spend', 'spend.currency') }} as spend_reporting
from {{ ref('stg_spend__marketing_spend') }} as spend
left join {{ ref('dim_campaign') }} as campaigns
    on
        campaigns.source_system = 'spend'
        and spend.channel = campaigns.hubspot_source
        and coalesce(spend.campaign, '(not set)') = campaigns.campaign_name
{{ fx_rate_join('spend.currency', 'spend.spend_date') }}
