{#-
    The state of a version of a versioned HubSpot CRM object: its instant (updatedAt, which
    decides the current state) and whether it is archived, from the record or from text
    columns already read from it (json_record_fields).
-#}
{% macro hubspot_version_state(updated_at_text=none, archived_text=none) -%}
    {%- set updated_at_text = updated_at_text or boussole.json_text('record', ['updatedAt']) -%}
    {%- set archived_text = archived_text or boussole.json_text('record', ['archived']) -%}
    {{ boussole.vendor_timestamp(updated_at_text) }} as updated_at,
        coalesce({{ archived_text }} = 'true', false) as is_archived
{%- endmacro %}

{#-
    The columns every versioned HubSpot CRM object carries into staging: its version state and
    the lineage of the delivery (extract date, file, record number) that rank_versions uses.
-#}
{% macro hubspot_version_columns() -%}
    {{ boussole.hubspot_version_state() }},
        _extract_date,
        _source_file,
        _record_number
{%- endmacro %}
