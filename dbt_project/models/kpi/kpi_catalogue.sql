-- The KPI catalogue as a table, from the meta of this model (kpi_catalogue.yml).
{%- set kpis = kpi_catalogue() %}
{%- set text_fields = ['label_fr', 'label_en', 'description', 'formula', 'description_fr', 'formula_fr',
    'unit', 'direction', 'category', 'kind', 'indicator_type', 'tier', 'owner_team'] %}

{%- for kpi in kpis %}
    {%- do kpi_check_source_systems(kpi) %}
    {%- set money_currency = var('reporting_currency') if kpi.unit == 'currency' else none %}
    select
        {{ sql_string(kpi.id) }} as kpi_id,
        {%- for field in text_fields %}
            cast({{ sql_string(kpi.get(field)) }} as {{ dbt.type_string() }}) as {{ field }},
        {%- endfor %}
        {{ sql_string(kpi.source_systems | join(',')) }} as source_systems,
        {{ sql_string(kpi_grains(kpi) | join(',')) }} as grains,
        cast({{ sql_string(kpi_slices(kpi).keys() | join(',')) }} as {{ dbt.type_string() }}) as slices,
        {{ sql_string(kpi.computation.type) }} as computation_type,
        {{ 'true' if kpi.get('additive') else 'false' }} as is_additive,
        cast({{ sql_string(kpi.get('secondary_value')) }} as {{ dbt.type_string() }}) as secondary_value_label,
        cast({{ sql_string(money_currency) }} as {{ dbt.type_string() }}) as currency,
        cast({{ kpi_restatement_tolerance(kpi) }} as {{ dbt.type_float() }}) as restatement_tolerance
    {%- if not loop.last %}
        union all
    {%- endif %}
{%- endfor %}
{%- if not kpis %}
    -- dbt is parsing: the catalogue is read from the graph at run time.
    select cast(null as {{ dbt.type_string() }}) as kpi_id
{%- endif %}
