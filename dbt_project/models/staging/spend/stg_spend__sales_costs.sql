-- Sales team costs, one row per month and team. A month is first delivered as a forecast,
-- then replaced by its final cost (with commissions) in a later extract: the latest
-- extract wins (then the later file and line).
with versions as (
    select
        cast({{ dbt.concat([json_text('record', ['month']), "'-01'"]) }} as date) as month_start,
        {{ json_text('record', ['team']) }} as team_name,
        cast({{ json_text('record', ['cost']) }} as decimal(18, 2)) as cost_amount,
        upper(trim({{ json_text('record', ['currency']) }})) as currency,
        _extract_date,
        _source_file,
        _record_number
    from {{ source('spend', 'sales_costs') }}
),

ranked as (
    {{ rank_versions('versions', 'month_start, team_name') }}
)

select
    month_start,
    team_name,
    cost_amount,
    currency,
    _extract_date,
    _source_file,
    _record_number
from ranked
where version_rank = 1
