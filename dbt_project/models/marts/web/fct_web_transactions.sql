-- One row per ecommerce transaction (purchase events with a transaction id): a purchase
-- logged twice (a reloaded confirmation page) counts once, at its first event. The revenue is
-- converted at the FX rate of the transaction date; the original amount and currency stay.
-- Incremental: the transactions with a new purchase event, or whose session was recomputed,
-- are recomputed from all their purchase events.
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='transaction_id',
    on_schema_change='fail',
) }}

with purchases as (
    select
        events.event_key,
        events.transaction_id,
        events.session_key,
        events.event_timestamp_us,
        events.event_at,
        events.event_date,
        events.purchase_revenue,
        -- GA4 sends the currency as an event parameter; the property currency when absent.
        coalesce(events.currency, '{{ var("reporting_currency") }}') as currency,
        events._transformed_at
    from {{ ref('stg_web__events') }} as events
    where events.event_name = 'purchase' and events.transaction_id is not null
),

{% if is_incremental() %}
    last_run as (
        select {{ last_transformed_at() }} as marker
    ),

    touched_transactions as (
        select purchases.transaction_id
        from purchases
        where purchases._transformed_at > (select last_run.marker from last_run)
        union
        select purchases.transaction_id
        from purchases
        inner join {{ ref('int_web__sessions') }} as sessions on purchases.session_key = sessions.session_key
        where sessions._transformed_at > (select last_run.marker from last_run)
    ),
{% endif %}

ranked as (
    select
        purchases.*,
        row_number() over (
            partition by purchases.transaction_id order by purchases.event_timestamp_us, purchases.event_key
        ) as purchase_order,
        max(purchases.event_date) over (partition by purchases.transaction_id) as last_purchase_date
    from purchases
    {% if is_incremental() %}
        where purchases.transaction_id in (select touched_transactions.transaction_id from touched_transactions)
    {% endif %}
)

select
    ranked.transaction_id,
    ranked.event_at as transaction_at,
    ranked.event_date as transaction_date,
    ranked.last_purchase_date,
    ranked.purchase_revenue,
    ranked.currency,
    case
        when ranked.currency = '{{ var("reporting_currency") }}' then ranked.purchase_revenue
        else ranked.purchase_revenue * fx.rate_to_reporting
    end as purchase_revenue_reporting,
    ranked.session_key,
    sessions.channel_group,
    sessions.source,
    sessions.medium,
    sessions.campaign,
    sessions.device_category,
    sessions.country,
    {{ dbt.current_timestamp() }} as _transformed_at
from ranked
left join {{ ref('int_web__sessions') }} as sessions on ranked.session_key = sessions.session_key
left join {{ ref('int_fx__rate_periods') }} as fx
    on
        ranked.currency = fx.currency
        and ranked.event_date >= fx.valid_from
        and (fx.valid_until is null or ranked.event_date < fx.valid_until)
where ranked.purchase_order = 1
