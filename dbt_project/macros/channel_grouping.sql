{#-
    GA4's default channel grouping of a session from its source and medium (a simplified
    rule set, without GA4's source-category lists). The groups are the ones of the
    channel_groups seed, so web sessions, CRM original sources and spend share one channel.
-#}
{% macro default_channel_grouping(source, medium) -%}
    case
        when coalesce({{ source }}, '(direct)') = '(direct)'
            and coalesce(lower({{ medium }}), '(none)') in ('(none)', '(not set)')
            then 'Direct'
        when lower({{ medium }}) in ('cpc', 'ppc', 'paidsearch', 'paid_search') then 'Paid Search'
        when lower({{ medium }}) in ('paid_social', 'paidsocial', 'paid-social', 'social_paid')
            then 'Paid Social'
        when lower({{ medium }}) in ('display', 'banner', 'cpm', 'interstitial') then 'Display'
        when lower({{ medium }}) = 'organic' then 'Organic Search'
        when lower({{ medium }}) in ('social', 'social-network', 'social-media', 'sm', 'social network')
            then 'Organic Social'
        when lower({{ medium }}) in ('email', 'e-mail', 'e_mail', 'e mail') then 'Email'
        when lower({{ medium }}) = 'affiliate' then 'Affiliates'
        when lower({{ medium }}) = 'referral' then 'Referral'
        else 'Unassigned'
    end
{%- endmacro %}
