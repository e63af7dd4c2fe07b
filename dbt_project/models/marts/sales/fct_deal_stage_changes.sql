-- One row per current deal and stage entered, from every delivered version of the deal.
-- Versions are ordered as rank_versions orders them (updatedAt, then delivery order);
-- consecutive versions in the same pipeline and stage are one stay (an amount change or a
-- re-delivery is no stage change), and a deal coming back to a stage enters it again.
-- entered_at is the updatedAt of the first version seen in the stage: for a deal older than
-- the first extract, the first stage seen may have been entered earlier.
with versions as (
    select
        versions.deal_id,
        versions.pipeline_id,
        versions.stage_id,
        versions.updated_at,
        lag(versions.pipeline_id) over (
            partition by versions.deal_id
            order by
                versions.updated_at nulls first,
                versions._extract_date, versions._source_file, versions._record_number
        ) as previous_pipeline_id,
        lag(versions.stage_id) over (
            partition by versions.deal_id
            order by
                versions.updated_at nulls first,
                versions._extract_date, versions._source_file, versions._record_number
        ) as previous_stage_id,
        row_number() over (
            partition by versions.deal_id
            order by
                versions.updated_at nulls first,
                versions._extract_date, versions._source_file, versions._record_number
        ) as version_number
    from {{ ref('stg_crm__deal_versions') }} as versions
    inner join {{ ref('stg_crm__deals') }} as current_deals on versions.deal_id = current_deals.deal_id
    where not versions.is_archived
),

entries as (
    select
        deal_id,
        pipeline_id,
        stage_id,
        updated_at as entered_at,
        version_number
    from versions
    where
        version_number = 1
        or stage_id <> previous_stage_id
        or pipeline_id <> previous_pipeline_id
),

numbered as (
    select
        entries.*,
        {{ reporting_date('entries.entered_at') }} as entered_date,
        row_number() over (partition by entries.deal_id order by entries.version_number) as stage_entry_number
    from entries
)

select
    numbered.deal_id,
    numbered.stage_entry_number,
    numbered.pipeline_id,
    numbered.stage_id,
    deal_stages.stage_label,
    deal_stages.probability as stage_probability,
    coalesce(deal_stages.is_won, false) as is_won,
    coalesce(deal_stages.is_lost, false) as is_lost,
    numbered.entered_at,
    numbered.entered_date,
    lead(numbered.entered_date) over (
        partition by numbered.deal_id order by numbered.stage_entry_number
    ) as left_date
from numbered
left join {{ ref('stg_crm__pipeline_stages') }} as deal_stages
    on numbered.pipeline_id = deal_stages.pipeline_id and numbered.stage_id = deal_stages.stage_id
