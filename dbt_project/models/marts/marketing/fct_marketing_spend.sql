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
    case
        when spend.currency = '{{ var("reporting_currency") }}' then spend.spend
        else spend.spend * fx.rate_to_reporting
    end as spend_reporting
from {{ ref('stg_spend__marketing_spend') }} as spend
left join {{ ref('dim_campaign') }} as campaigns
    on
        campaigns.source_system = 'spend'
        and spend.channel = campaigns.hubspot_source
        and coalesce(spend.campaign, '(not set)') = campaigns.campaign_name
left join {{ ref('int_fx__rate_periods') }} as fx
    on
        spend.currency = fx.currency
        and spend.spend_date >= fx.valid_from
        and (fx.valid_until is null or spend.spend_date < fx.valid_until)
