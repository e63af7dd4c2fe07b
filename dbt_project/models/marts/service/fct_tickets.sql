-- One row per current support ticket with its reply and resolution metrics. Minutes are the
-- support system's own ticket metrics; when they are absent, the first reply is measured on
-- the comments (calendar minutes only: business hours need the desk's schedules).
with replies as (
    select
        ticket_id,
        min(replied_at) as first_replied_at,
        count(*) as agent_reply_comments
    from {{ ref('fct_ticket_replies') }}
    group by ticket_id
),

tickets as (
    select
        tickets.*,
        tickets.status in ('solved', 'closed') as is_solved,
        metrics.solved_at,
        metrics.replies,
        metrics.reopens,
        metrics.first_reply_minutes_calendar,
        metrics.first_reply_minutes_business,
        metrics.first_resolution_minutes_calendar,
        metrics.first_resolution_minutes_business,
        metrics.full_resolution_minutes_calendar,
        metrics.full_resolution_minutes_business,
        coalesce(
            {{ dbt.dateadd('minute', 'metrics.first_resolution_minutes_calendar', 'tickets.created_at') }},
            metrics.solved_at
        ) as first_solved_at,
        replies.first_replied_at,
        replies.agent_reply_comments
    from {{ ref('int_support__tickets') }} as tickets
    left join {{ ref('stg_support__ticket_metrics') }} as metrics
        on tickets.ticket_id = metrics.ticket_id
    left join replies
        on tickets.ticket_id = replies.ticket_id
)

select
    ticket_id,
    created_at,
    {{ reporting_date('created_at') }} as created_date,
    status,
    priority,
    channel,
    ticket_type,
    group_id,
    group_name,
    assignee_id,
    organization_id,
    company_id,
    requester_hash,
    is_solved,
    first_solved_at,
    {{ reporting_date('first_solved_at') }} as solved_date,
    solved_at,
    case when is_solved then {{ reporting_date('solved_at') }} end as last_solved_date,
    replies,
    coalesce(replies, agent_reply_comments, 0) as agent_replies,
    reopens,
    coalesce(reopens, 0) > 0 as is_reopened,
    coalesce(
        first_reply_minutes_calendar,
        {{ minutes_between('created_at', 'first_replied_at') }}
    ) as first_reply_minutes_calendar,
    first_reply_minutes_business,
    first_resolution_minutes_calendar,
    first_resolution_minutes_business,
    full_resolution_minutes_calendar,
    full_resolution_minutes_business
from tickets
