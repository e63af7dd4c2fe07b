{#-
    Ranks the versions of each record delivered by incremental extracts: version_rank = 1 is
    the current state. The latest `updated_at` wins whatever the file order; between equal
    timestamps, the later delivery (extract date, file, record number) wins.
-#}
{% macro rank_versions(relation, key, updated_at=none) -%}
    select
        *,
        row_number() over (
            partition by {{ key }}
            order by
                {% if updated_at is not none -%}{{ updated_at }} desc nulls last, {% endif -%}
                _extract_date desc, _source_file desc, _record_number desc
        ) as version_rank
    from {{ relation }}
{%- endmacro %}
