-- One row per public agent reply: a public comment by an agent or admin on a current ticket,
-- after the ticket's creation (a comment at creation is the ticket's description, even when an
-- agent opened the ticket). reply_minutes runs from the ticket's creation or from the
-- requester's latest earlier public comment, whichever is later: the time the customer waited.
with tickets as (
    select
        ticket_id,
        created_at,
        requester_id,
        channel,
        priority,
        group_name,
        assignee_id,
        company_id
    from {{ ref('int_support__tickets') }}
),

public_comments as (
    select
        ticket_comments.comment_id,
        ticket_comments.ticket_id,
        ticket_comments.author_id,
        ticket_comments.created_at
    from {{ ref('stg_support__ticket_comments') }} as ticket_comments
    inner join tickets
        on ticket_comments.ticket_id = tickets.ticket_id
    where ticket_comments.is_public
),

agent_replies as (
    select
        public_comments.comment_id,
        public_comments.ticket_id,
        public_comments.author_id,
        public_comments.created_at as replied_at
    from public_comments
    inner join {{ ref('stg_support__users') }} as authors
        on public_comments.author_id = authors.user_id
    inner join tickets
        on public_comments.ticket_id = tickets.ticket_id
    where
        authors.user_role in ('agent', 'admin')
        and public_comments.created_at > tickets.created_at
),

requester_comments as (
    select
        public_comments.ticket_id,
        public_comments.created_at
    from public_comments
    inner join tickets
        on
            public_comments.ticket_id = tickets.ticket_id
            and public_comments.author_id = tickets.requester_id
),

awaited as (
    select
        agent_replies.comment_id,
        agent_replies.ticket_id,
        agent_replies.author_id,
        agent_replies.replied_at,
        max(requester_comments.created_at) as requester_commented_at
    from agent_replies
    left join requester_comments
        on
            agent_replies.ticket_id = requester_comments.ticket_id
            and agent_replies.replied_at > requester_comments.created_at
    group by
        agent_replies.comment_id,
        agent_replies.ticket_id,
        agent_replies.author_id,
        agent_replies.replied_at
),

replies as (
    select
        awaited.comment_id,
        awaited.ticket_id,
        awaited.author_id,
        awaited.replied_at,
        case
            when awaited.requester_commented_at > tickets.created_at then awaited.requester_commented_at
            else tickets.created_at
        end as awaited_since,
        tickets.channel,
        tickets.priority,
        tickets.group_name,
        tickets.assignee_id,
        tickets.company_id
    from awaited
    inner join tickets
        on awaited.ticket_id = tickets.ticket_id
)

select
    comment_id,
    ticket_id,
    author_id,
    replied_at,
    {{ reporting_date('replied_at') }} as reply_date,
    {{ minutes_between('awaited_since', 'replied_at') }} as reply_minutes,
    row_number() over (partition by ticket_id order by replied_at, comment_id) = 1 as is_first_reply,
    channel,
    priority,
    group_name,
    assignee_id,
    company_id
from replies
