{#-
    The labels every service fact is sliced by, alike for a ticket now (int_support__tickets)
    and as it stood on a date (int_support__ticket_states): priority and channel '(not set)'
    when missing, the agent group's name '(no group)' (with ticket_slice_joins).
-#}
{% macro ticket_slice_columns(tickets) -%}
    coalesce({{ tickets }}.priority, '(not set)') as priority,
    coalesce({{ tickets }}.channel, '(not set)') as channel,
    coalesce(agent_groups.group_name, '(no group)') as group_name
{%- endmacro %}

{% macro ticket_slice_joins(tickets) -%}
    left join {{ ref('stg_support__groups') }} as agent_groups
        on {{ tickets }}.group_id = agent_groups.group_id
{%- endmacro %}
