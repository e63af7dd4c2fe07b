{#-
    The KPI catalogue is the meta of the kpi_catalogue model (models/kpi/kpi_catalogue.yml).
    These macros read it; every KPI model, the kpi_catalogue table and the wide views are
    generated from it, so a KPI's definition is written once.
-#}

{#- The catalogue entries, in file order (empty while dbt parses: the graph is not built yet). -#}
{% macro kpi_catalogue() -%}
    {%- if not execute -%}
        {{ return([]) }}
    {%- endif -%}
    {%- set node = graph.nodes.get('model.' ~ project_name ~ '.kpi_catalogue') -%}
    {{ return(node.config.meta.kpis) }}
{%- endmacro %}

{% macro kpi_by_id(kpi_id) -%}
    {%- for kpi in kpi_catalogue() if kpi.id == kpi_id -%}
        {{ return(kpi) }}
    {%- endfor -%}
    {{ exceptions.raise_compiler_error("KPI '" ~ kpi_id ~ "' is not in the catalogue (models/kpi/kpi_catalogue.yml)") }}
{%- endmacro %}

{#- The grains of a KPI: its own list, else every grain of var('kpi_grains'). -#}
{% macro kpi_grains(kpi) -%}
    {{ return(kpi.get('grains') or var('kpi_grains')) }}
{%- endmacro %}

{#-
    The slices of a KPI as {name: fact column}. A combination of KPIs is sliced by the
    slices all its inputs share, unless it names its own (a subset).
-#}
{% macro kpi_slices(kpi) -%}
    {%- set computation = kpi.computation -%}
    {%- if computation.type != 'combination' -%}
        {{ return(computation.get('slices', {})) }}
    {%- endif -%}
    {%- set shared = {} -%}
    {%- set inputs = computation.inputs.values() | list -%}
    {%- set first_slices = kpi_slices(kpi_by_id(inputs[0].split('@')[0])) -%}
    {%- for name in first_slices -%}
        {%- set ns = namespace(everywhere=true) -%}
        {%- for input in inputs[1:] -%}
            {%- if name not in kpi_slices(kpi_by_id(input.split('@')[0])) -%}
                {%- set ns.everywhere = false -%}
            {%- endif -%}
        {%- endfor -%}
        {%- if ns.everywhere and (computation.get('slices') is none or name in computation.slices) -%}
            {%- do shared.update({name: name}) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(shared) }}
{%- endmacro %}

{#-
    The relative change of a complete period's value beyond which a newly built value is a
    restatement (boussole/restatements.py): the entry's restatement_tolerance, else by unit.
    Counts are exact; money moves by a correction of 0.01 % (100 in 1,000,000); ratios,
    durations and scores by 0.1 %, below which float rounding and re-ordered sums stay silent.
-#}
{% macro kpi_restatement_tolerance(kpi) -%}
    {%- set by_unit = {'count': 0, 'currency': 0.0001} -%}
    {{ return(kpi.get('restatement_tolerance', by_unit.get(kpi.unit, 0.001))) }}
{%- endmacro %}

{#-
    A SQL expression of the catalogue, made ready for the engine: ${var_name} placeholders
    become dbt vars, and median(column) the engine's median (see kpi_median).
-#}
{% macro kpi_expression(expression) -%}
    {%- set rendered = namespace(text=expression | string) -%}
    {%- for name in modules.re.findall('\\$\\{(\\w+)\\}', rendered.text) -%}
        {%- set rendered.text = rendered.text | replace('${' ~ name ~ '}', var(name) | string) -%}
    {%- endfor -%}
    {%- for column in modules.re.findall('\\bmedian\\(([^()]+)\\)', rendered.text) -%}
        {%- set rendered.text = rendered.text | replace('median(' ~ column ~ ')', kpi_median(column)) -%}
    {%- endfor -%}
    {{ return(rendered.text) }}
{%- endmacro %}

{#- The median of a column as an ordered-set aggregate (SQL:2008; DuckDB, Postgres, Spark). -#}
{% macro kpi_median(column) -%}
    {{ return(adapter.dispatch('kpi_median', 'boussole')(column)) }}
{%- endmacro %}

{% macro default__kpi_median(column) -%}
    percentile_cont(0.5) within group (order by {{ column }})
{%- endmacro %}

{#-
    The as-of date as a SQL date: the environment variable BOUSSOLE_AS_OF_DATE (the pipeline
    sets the latest extract date loaded), else today in the reporting time zone. Read only when
    the model runs (execute), never at parse time: dbt re-parses the files whose parse read an
    environment variable that changed, and a var changed by --vars re-parses the whole project.
-#}
{% macro kpi_as_of_date() -%}
    {%- set as_of_date = env_var('BOUSSOLE_AS_OF_DATE', '') if execute else '' -%}
    {%- if as_of_date -%}
        cast('{{ as_of_date }}' as date)
    {%- else -%}
        {{ reporting_date(dbt.current_timestamp()) }}
    {%- endif -%}
{%- endmacro %}

{#- 'text' as a SQL string literal. -#}
{% macro sql_string(text) -%}
    {%- if text is none -%}
        null
    {%- else -%}
        '{{ (text | string) | replace("'", "''") }}'
    {%- endif -%}
{%- endmacro %}
