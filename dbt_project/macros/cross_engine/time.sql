{#- Timestamps from the vendors, and the reporting calendar. -#}

{#- Epoch numbers (seconds_per_unit: 1000 for milliseconds, 1000000 for microseconds). -#}
{% macro timestamp_from_epoch(expression, units_per_second) -%}
    {{ return(adapter.dispatch('timestamp_from_epoch', 'boussole')(expression, units_per_second)) }}
{%- endmacro %}

{% macro default__timestamp_from_epoch(expression, units_per_second) -%}
    to_timestamp(cast({{ expression }} as double precision) / {{ units_per_second }})
{%- endmacro %}


{#- HubSpot properties hold ISO-8601 text or epoch milliseconds as text: accept both. -#}
{% macro vendor_timestamp(expression) -%}
    {{ return(adapter.dispatch('vendor_timestamp', 'boussole')(expression)) }}
{%- endmacro %}

{% macro default__vendor_timestamp(expression) -%}
    case
        when {{ expression }} similar to '[0-9]+'
            then {{ boussole.timestamp_from_epoch(expression, 1000) }}
        else cast({{ expression }} as timestamp with time zone)
    end
{%- endmacro %}

{% macro duckdb__vendor_timestamp(expression) -%}
    case
        when regexp_full_match({{ expression }}, '[0-9]+')
            then {{ boussole.timestamp_from_epoch(expression, 1000) }}
        else cast({{ expression }} as timestamp with time zone)
    end
{%- endmacro %}


{#- The calendar date of an instant in the reporting time zone (period attribution). -#}
{% macro reporting_date(timestamp_tz) -%}
    {{ return(adapter.dispatch('reporting_date', 'boussole')(timestamp_tz)) }}
{%- endmacro %}

{% macro default__reporting_date(timestamp_tz) -%}
    cast(({{ timestamp_tz }}) at time zone '{{ var("reporting_tz") }}' as date)
{%- endmacro %}


{#-
    Minutes elapsed between two instants (timestamps with time zone), whatever the session's
    time zone: a daylight-saving change is not waiting time.
-#}
{% macro minutes_between(start_instant, end_instant) -%}
    {{ return(adapter.dispatch('minutes_between', 'boussole')(start_instant, end_instant)) }}
{%- endmacro %}

{% macro default__minutes_between(start_instant, end_instant) -%}
    cast(extract(epoch from ({{ end_instant }} - {{ start_instant }})) as {{ type_double() }}) / 60
{%- endmacro %}

{% macro duckdb__minutes_between(start_instant, end_instant) -%}
    (epoch({{ end_instant }}) - epoch({{ start_instant }})) / 60.0
{%- endmacro %}
