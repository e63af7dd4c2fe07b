-- The state of each current deal over time, one row per spell (kpi_state_spells): what the
-- sales stocks (at_period_end KPIs) count at a period's last day. A spell holds the stage,
-- amount, owner and associations of the deal's latest version updated by then; a close
-- counts from its close date. A deal is open from its create date, also before its first
-- extract: in the stage of its first version when that one is open; when the deal is first
-- seen closed, in an unknown stage weighted as the entry stage of its pipeline (the open stage
-- of lowest display order), until its close date. Amounts convert at the FX rate of the
-- spell's close date, or of the create date while open (as fct_deals). Teams and companies'
-- countries are the current ones. Deals archived now are left out, as from every fact. The
-- lineage columns name the version a spell comes from (the first one before it).
with versions as (
    select
        versions.*,
        {{ deal_stage_columns('deal_stages') }}
    from {{ ref('stg_crm__deal_versions') }} as versions
    inner join {{ ref('stg_crm__deals') }} as current_deals on versions.deal_id = current_deals.deal_id
    left join {{ ref('stg_crm__pipeline_stages') }} as deal_stages
        on versions.pipeline_id = deal_stages.pipeline_id and versions.stage_id = deal_stages.stage_id
),

spells as (
    {{ kpi_state_spells('versions', 'deal_id', 'created_at', 'is_closed', 'closed_at') }}
),

entry_stages as (
    select
        pipeline_id,
        probability,
        row_number() over (partition by pipeline_id order by display_order, stage_id) as entry_rank
    from {{ ref('stg_crm__pipeline_stages') }}
    where not is_closed
),

states as (
    select
        spells.*,
        {{ reporting_date('spells.created_at') }} as create_date,
        spells.is_before_first_version or not (spells.is_closed or spells.is_archived) as is_open,
        not spells.is_before_first_version and not spells.is_archived and spells.is_won as is_won_state,
        not spells.is_before_first_version and not spells.is_archived and spells.is_lost as is_lost_state,
        coalesce(spells.recurring_revenue_amount, 0) > 0 as is_recurring
    from spells
),

closes as (
    select
        states.*,
        case
            when states.is_won_state or states.is_lost_state then {{ reporting_date('states.closed_at') }}
        end as close_date
    from states
)

select
    closes.deal_id,
    closes.version_number,
    closes.state_from,
    closes.state_until,
    closes.is_before_first_version,
    closes.is_open,
    closes.is_won_state as is_won,
    closes.is_lost_state as is_lost,
    case when not closes.is_before_first_version then closes.stage_id end as stage_id,
    case
        when closes.is_before_first_version then entry_stages.probability else closes.stage_probability
    end as stage_probability,
    closes.create_date,
    closes.close_date,
    {{ dbt.datediff('closes.create_date', 'closes.close_date', 'day') }}
        as cycle_days,
    {{ to_reporting_currency('closes.amount', 'closes.currency') }} as amount_reporting,
    closes.is_recurring,
    {{ deal_contract_columns('closes', 'closes.is_won_state') }},
    {{ deal_slice_columns('closes') }},
    closes.pipeline_label,
    coalesce(closes.product_line, '(not set)') as product_line,
    closes.currency as currency_original,
    closes._extract_date,
    closes._source_file,
    closes._record_number
from closes
left join entry_stages on closes.pipeline_id = entry_stages.pipeline_id and entry_stages.entry_rank = 1
{{ deal_slice_joins('closes') }}
{{ fx_rate_join('closes.currency', 'coalesce(closes.close_date, closes.create_date)') }}
