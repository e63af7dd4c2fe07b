-- One row per current owner (sales rep) with the primary team, which carries the sales region.
-- An export without the primary flag still gives a team: the first by id.
with primary_teams as (
    select
        owner_id,
        team_id,
        team_name,
        row_number() over (
            partition by owner_id order by case when is_primary_team then 0 else 1 end, team_id
        ) as team_rank
    from {{ ref('stg_crm__owner_teams') }}
)

select
    owners.owner_id,
    owners.email_hash,
    primary_teams.team_id,
    coalesce(primary_teams.team_name, '(no team)') as team_name
from {{ ref('stg_crm__owners') }} as owners
left join primary_teams
    on owners.owner_id = primary_teams.owner_id and primary_teams.team_rank = 1
