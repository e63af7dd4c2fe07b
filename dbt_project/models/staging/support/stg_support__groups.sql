-- Zendesk agent groups, current state (the latest delivery wins; deleted groups removed).
with versions as (
    select
        cast({{ json_text('record', ['id']) }} as bigint) as group_id,
        {{ json_text('record', ['name']) }} as group_name,
        {{ vendor_timestamp(json_text('record', ['created_at'])) }} as created_at,
        {{ vendor_timestamp(json_text('record', ['updated_at'])) }} as updated_at,
        coalesce({{ json_text('record', ['deleted']) }} = 'true', false) as is_deleted,
        _extract_date,
        _source_file,
        _record_number
    from {{ source('support', 'groups') }}
),

ranked as (
    {{ rank_versions('versions', 'group_id') }}
)

select
    group_id,
    group_name,
    created_at,
    updated_at,
    _extract_date,
    _source_file,
    _record_number
from ranked
where version_rank = 1 and not is_deleted
