-- The state of each current ticket over time, one row per spell (kpi_state_spells): what the
-- backlog counts at a period's last day. A spell holds the status, priority, channel, group and
-- assignee of the ticket's latest version updated by then. A solve counts from the earliest
-- solve the ticket metrics know since the version before (the first solve, created_at plus
-- the first resolution time, else the latest solve, solved_at), so a ticket solved at a period
-- end and reopened later is out of that period's backlog, and in the backlog from its reopened
-- version until it is solved again. Before its first version a ticket is open from its
-- creation. The company is the current one; tickets deleted now are left out, as from every
-- fact. The lineage columns name the version a spell comes from (the first one before it).
with versions as (
    select
        versions.*,
        versions.status in ('solved', 'closed') as is_solved,
        tickets.first_solved_at,
        tickets.solved_at,
        tickets.company_id
    from {{ ref('stg_support__ticket_versions') }} as versions
    inner join {{ ref('fct_tickets') }} as tickets on versions.ticket_id = tickets.ticket_id
),

spells as (
    {{ kpi_state_spells(
        'versions', 'ticket_id', 'created_at', 'is_solved',
        'case when first_solved_at > coalesce(previous_updated_at, created_at) and first_solved_at <= updated_at
            then first_solved_at else solved_at end'
    ) }}
)

select
    spells.ticket_id,
    spells.version_number,
    spells.state_from,
    spells.state_until,
    spells.is_before_first_version,
    spells.is_before_first_version or not (spells.is_solved or spells.status = 'deleted') as is_open,
    case when not spells.is_before_first_version then spells.status end as status,
    {{ ticket_slice_columns('spells') }},
    spells.assignee_id,
    spells.company_id,
    spells._extract_date,
    spells._source_file,
    spells._record_number
from spells
{{ ticket_slice_joins('spells') }}
