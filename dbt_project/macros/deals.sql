{#-
    What every model of deals (fct_deals, the versions of int_sales__deal_states) derives
    alike. Won and lost come from the stage metadata of the deal's own pipeline, never from a
    stage label: closed with probability 1 is won, closed with probability 0 is lost.
-#}
{% macro deal_stage_columns(stages) -%}
    {{ stages }}.pipeline_label,
        {{ stages }}.stage_label,
        coalesce({{ stages }}.is_closed, false) as is_closed,
        coalesce({{ stages }}.is_won, false) as is_won,
        coalesce({{ stages }}.is_lost, false) as is_lost,
        {{ stages }}.probability as stage_probability
{%- endmacro %}

{#- The owner's team and the company's country and region, current (deal_slice_joins). -#}
{% macro deal_slice_columns(deals) -%}
    {{ deals }}.owner_id,
    coalesce(owners.team_name, '(no team)') as team_name,
    {{ deals }}.company_id,
    companies.country as company_country,
    coalesce(companies.region, '(not set)') as company_region
{%- endmacro %}

{% macro deal_slice_joins(deals) -%}
    left join {{ ref('dim_owner') }} as owners on {{ deals }}.owner_id = owners.owner_id
    left join {{ ref('int_crm__companies') }} as companies on {{ deals }}.company_id = companies.company_id
{%- endmacro %}

{#-
    The monthly recurring revenue of a recurring deal in the reporting currency (the FX rate
    joined by fx_rate_join), and the contract it runs under once won: from its close date to
    its contract end date (null when open-ended).
-#}
{% macro deal_contract_columns(deals, is_won) -%}
    case
        when {{ deals }}.is_recurring
            then {{ to_reporting_currency(deals ~ '.recurring_revenue_amount', deals ~ '.currency') }}
    end as monthly_recurring_amount_reporting,
    case when {{ is_won }} and {{ deals }}.is_recurring then {{ deals }}.close_date end as contract_start_date,
    case when {{ is_won }} and {{ deals }}.is_recurring then {{ deals }}.contract_end_date end as contract_end_date
{%- endmacro %}
