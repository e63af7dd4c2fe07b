-- Deal stages with the metadata that decides won and lost (never the stage label):
-- closed with probability 1 is won, closed with probability 0 is lost.
with versions as (
    select
        {{ json_text('record', ['id']) }} as pipeline_id,
        {{ json_text('record', ['label']) }} as pipeline_label,
        record,
        _extract_date,
        _source_file,
        _record_number
    from {{ source('crm', 'pipelines') }}
),

pipelines as (
    {{ rank_versions('versions', 'pipeline_id') }}
),

stages as (
    select
        pipelines.pipeline_id,
        pipelines.pipeline_label,
        {{ json_text('stage.value', ['id']) }} as stage_id,
        {{ json_text('stage.value', ['label']) }} as stage_label,
        cast({{ json_text('stage.value', ['displayOrder']) }} as integer) as display_order,
        lower({{ json_text('stage.value', ['metadata', 'isClosed']) }}) = 'true' as is_closed,
        cast({{ json_text('stage.value', ['metadata', 'probability']) }} as decimal(5, 4)) as probability
    from pipelines
    {{ json_array_rows('pipelines.record', ['stages'], 'stage') }}
    where pipelines.version_rank = 1
)

select
    pipeline_id,
    pipeline_label,
    stage_id,
    stage_label,
    display_order,
    is_closed,
    probability,
    is_closed and probability = 1 as is_won,
    is_closed and probability = 0 as is_lost
from stages
