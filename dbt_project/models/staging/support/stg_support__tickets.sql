-- Current state of each Zendesk ticket: the latest version by updated_at; deleted tickets
-- leave the current state.
with ranked as (
    {{ rank_versions(ref('stg_support__ticket_versions'), 'ticket_id', 'updated_at') }}
)

select
    ticket_id,
    created_at,
    updated_at,
    status,
    priority,
    ticket_type,
    channel,
    requester_id,
    assignee_id,
    group_id,
    organization_id,
    satisfaction_score,
    satisfaction_rating_id,
    _extract_date,
    _source_file,
    _record_number
from ranked
where version_rank = 1 and status <> 'deleted'
