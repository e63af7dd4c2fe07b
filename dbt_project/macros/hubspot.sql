{#-
    The columns every versioned HubSpot CRM object carries into staging: the instant of the
    version (updatedAt, which decides the current state), whether it is archived, and the
    lineage of the delivery (extract date, file, record number) that rank_versions uses.
-#}
{% macro hubspot_version_columns() -%}
    {{ boussole.vendor_timestamp(boussole.json_text('record', ['updatedAt'])) }} as updated_at,
        coalesce({{ boussole.json_text('record', ['archived']) }} = 'true', false) as is_archived,
        _extract_date,
        _source_file,
        _record_number
{%- endmacro %}
