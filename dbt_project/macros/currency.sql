{#-
    Money in the reporting currency (var reporting_currency) at the FX rate of a date. A
    model joins the rate with fx_rate_join and converts each amount with to_reporting_currency.
-#}

{#- A LEFT JOIN on the rate valid on `rate_date` for `currency` (int_fx__rate_periods). -#}
{% macro fx_rate_join(currency, rate_date, alias='fx') -%}
    left join {{ ref('int_fx__rate_periods') }} as {{ alias }}
        on
            {{ currency }} = {{ alias }}.currency
            and {{ rate_date }} >= {{ alias }}.valid_from
            and ({{ alias }}.valid_until is null or {{ rate_date }} < {{ alias }}.valid_until)
{%- endmacro %}

{#- `amount` in the reporting currency: as is in that currency, else times the joined rate. -#}
{% macro to_reporting_currency(amount, currency, alias='fx') -%}
    case
        when {{ currency }} = '{{ var("reporting_currency") }}' then {{ amount }}
        else {{ amount }} * {{ alias }}.rate_to_reporting
    end
{%- endmacro %}
