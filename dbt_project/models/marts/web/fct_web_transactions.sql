-- One row per ecommerce transaction (purchase events with a transaction id): a purchase
-- logged twice (a reloaded confirmation page) counts once, at its first event. The revenue is
-- converted at the FX rate of the transaction date; the original amount and currency stay.
-- Incremental: the transactions with a new purchase event, or whose session was recomputed,
-- are recomputed from all their purchase events, looked up by date.
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='transaction_id',
    on_schema_change='fail',
) }}

{#- A purchase event of the staged events, with the columns a transaction takes from it. -#}
{% set purchase_columns %}
        events.event_key,
        events.transaction_id,
        events.session_key,
        events.event_timestamp_us,
        events.event_at,
        events.event_date,
        events.purchase_revenue,
        -- GA4 sends the currency as an event parameter; the property currency when absent.
        coalesce(events.currency, '{{ var("reporting_currency") }}') as currency
{% endset %}
{% set is_purchase = "events.event_name = 'purchase' and events.transaction_id is not null" %}

with
{% if is_incremental() %}
    last_run as (
        select {{ last_transformed_at() }} as marker
    ),

    recomputed_sessions as (
        select
            sessions.session_key,
            sessions.session_date,
            sessions.session_end_date
        from {{ ref('int_web__sessions') }} as sessions
        where sessions._transformed_at > (select last_run.marker from last_run)
    ),

    -- New purchase events, and those of recomputed sessions (looked up between the sessions'
    -- start and end dates, which hold all their events).
    touched_purchases as (
        select
            events.transaction_id,
            events.event_date
        from {{ ref('stg_web__events') }} as events
        where
            {{ is_purchase }}
            and events._transformed_at > (select last_run.marker from last_run)
        union
        select
            events.transaction_id,
            events.event_date
        from {{ ref('stg_web__events') }} as events
        inner join recomputed_sessions on events.session_key = recomputed_sessions.session_key
        where
            {{ is_purchase }}
            and events.event_date between (select min(recomputed_sessions.session_date) from recomputed_sessions)
            and (select max(recomputed_sessions.session_end_date) from recomputed_sessions)
    ),

    -- The dates that hold every purchase event of the touched transactions: those found above,
    -- and the span already stored for each (first to last purchase date).
    touched_dates as (
        select
            {{ lookup_date_span(
                'touched_purchases.event_date', 'touched_purchases.event_date',
                'stored.transaction_date', 'stored.last_purchase_date'
            ) }}
        from touched_purchases
        left join {{ this }} as stored on touched_purchases.transaction_id = stored.transaction_id
    ),
{% endif %}

purchases as (
    select
        {{- purchase_columns }}
    from {{ ref('stg_web__events') }} as events
    {% if is_incremental() %}
        where
            {{ is_purchase }}
            and events.event_date between (select first_date from touched_dates) and (select last_date from touched_dates)
            and events.transaction_id in (select touched_purchases.transaction_id from touched_purchases)
    {% else %}
        where {{ is_purchase }}
    {% endif %}
),

ranked as (
    select
        purchases.*,
        row_number() over (
            partition by purchases.transaction_id order by purchases.event_timestamp_us, purchases.event_key
        ) as purchase_order,
        max(purchases.event_date) over (partition by purchases.transaction_id) as last_purchase_date
    from purchases
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
