-- One row per conformed marketing channel: the groups of the channel_groups seed, which maps
-- HubSpot original sources to them, and any other group GA4's default channel grouping gives
-- web sessions (Display, Affiliates...), which no HubSpot source maps to.
with seeded as (
    select
        channel_group,
        max(case when is_paid then 1 else 0 end) = 1 as is_paid,
        {{ dbt.listagg('hubspot_source', "','", 'order by hubspot_source') }} as hubspot_sources
    from {{ ref('channel_groups') }}
    group by channel_group
),

web_only as (
    select distinct sessions.channel_group
    from {{ ref('int_web__sessions') }} as sessions
    where sessions.channel_group not in (select seeded.channel_group from seeded)
)

select
    channel_group,
    is_paid,
    hubspot_sources
from seeded
union all
select
    channel_group,
    cast(null as boolean) as is_paid,
    cast(null as {{ dbt.type_string() }}) as hubspot_sources
from web_only
