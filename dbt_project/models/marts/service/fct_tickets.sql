-- One row per current support ticket with its reply and resolution metrics.
select
    tickets.ticket_id,
    tickets.created_at,
    {{ reporting_date('tickets.created_at') }} as created_date,
    tickets.status,
    coalesce(tickets.priority, '(not set)') as priority,
    coalesce(tickets.channel, '(not set)') as channel,
    tickets.group_id,
    tickets.assignee_id,
    tickets.organization_id,
    metrics.solved_at,
    metrics.replies,
    metrics.reopens,
    metrics.first_reply_minutes_calendar,
    metrics.first_reply_minutes_business,
    metrics.full_resolution_minutes_calendar
from {{ ref('stg_support__tickets') }} as tickets
left join {{ ref('stg_support__ticket_metrics') }} as metrics
    on tickets.ticket_id = metrics.ticket_id
