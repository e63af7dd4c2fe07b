-- One row per rated ticket (good or bad; offered and unoffered are not ratings). The
-- satisfaction_ratings extract gives the rating and the instant it was given; a ticket it does
-- not rate (the extract is optional, or behind) falls back to the ticket's own
-- satisfaction_rating, dated by the ticket's updated_at.
with extract_ratings as (
    select
        satisfaction_rating_id as rating_id,
        ticket_id,
        updated_at as rated_at,
        score,
        row_number() over (
            partition by ticket_id order by updated_at desc, satisfaction_rating_id desc
        ) as rating_rank
    from {{ ref('stg_support__satisfaction_ratings') }}
    where score in ('good', 'bad')
),

ratings as (
    select
        rating_id,
        ticket_id,
        rated_at,
        score,
        'satisfaction_ratings' as rating_source
    from extract_ratings
    where rating_rank = 1

    union all

    select
        tickets.satisfaction_rating_id as rating_id,
        tickets.ticket_id,
        tickets.updated_at as rated_at,
        tickets.satisfaction_score as score,
        'ticket' as rating_source
    from {{ ref('int_support__tickets') }} as tickets
    where
        tickets.satisfaction_score in ('good', 'bad')
        and not exists (
            select 1
            from extract_ratings
            where extract_ratings.ticket_id = tickets.ticket_id
        )
)

select
    ratings.rating_id,
    ratings.ticket_id,
    ratings.rated_at,
    {{ reporting_date('ratings.rated_at') }} as rating_date,
    ratings.score,
    ratings.score = 'good' as is_good,
    ratings.rating_source,
    tickets.channel,
    tickets.priority,
    tickets.group_name,
    tickets.assignee_id,
    tickets.company_id
from ratings
inner join {{ ref('int_support__tickets') }} as tickets
    on ratings.ticket_id = tickets.ticket_id
