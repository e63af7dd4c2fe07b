-- One row per sales activity logged in the CRM: calls, one-to-one emails and meetings
-- (archived ones are already out of staging). The team is the owner's current primary team.
with activities as (
    select
        call_id as activity_id,
        'call' as activity_type,
        activity_at,
        owner_id
    from {{ ref('stg_crm__calls') }}

    union all

    select
        email_id as activity_id,
        'email' as activity_type,
        activity_at,
        owner_id
    from {{ ref('stg_crm__emails') }}

    union all

    select
        meeting_id as activity_id,
        'meeting' as activity_type,
        activity_at,
        owner_id
    from {{ ref('stg_crm__meetings') }}
)

select
    activities.activity_id,
    activities.activity_type,
    activities.activity_at,
    {{ reporting_date('activities.activity_at') }} as activity_date,
    activities.owner_id,
    coalesce(owners.team_name, '(no team)') as team_name
from activities
left join {{ ref('dim_owner') }} as owners on activities.owner_id = owners.owner_id
