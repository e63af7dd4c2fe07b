{#-
    Personal data in staging. Emails, names and phone numbers never leave staging in clear:
    they become keyed hashes (pseudonyms), equal for equal inputs, so identities still join
    across sources (CRM contact email = Zendesk requester email) without being readable.

    pseudonymise(expression)     keyed hash (hex sha256 of key || '|' || value); null stays null
    normalised_email(expression) lower-case, trimmed; empty text becomes null (never a shared pseudonym)
    email_domain(expression)     the part after '@' of the normalised email (not personal: the
                                 organisation domain = company domain identity join needs it)

    The key: dbt refuses DBT_ENV_SECRET_* variables outside profiles.yml and packages.yml
    ("Secret env vars are allowed only in profiles.yml or packages.yml"), so models read the
    plain BOUSSOLE_PII_KEY. The pipeline also sets DBT_ENV_SECRET_BOUSSOLE_PII_KEY to the same
    value, which makes dbt scrub the key from its logs. The key is rendered into the compiled
    SQL (the target folder), so the models that pseudonymise are tables, not views: the
    warehouse stores no SQL text that holds the key.
-#}

{% macro pii_key() -%}
    {{ return(env_var('BOUSSOLE_PII_KEY', '')) }}
{%- endmacro %}


{% macro pseudonymise(expression) -%}
    {{ return(adapter.dispatch('pseudonymise', 'boussole')(expression)) }}
{%- endmacro %}

{% macro default__pseudonymise(expression) -%}
    {%- set keyed = dbt.concat(["'" ~ (boussole.pii_key() | replace("'", "''")) ~ "|'", '(' ~ expression ~ ')']) -%}
    case when ({{ expression }}) is not null then sha256({{ keyed }}) end
{%- endmacro %}

{% macro postgres__pseudonymise(expression) -%}
    {%- set keyed = dbt.concat(["'" ~ (boussole.pii_key() | replace("'", "''")) ~ "|'", '(' ~ expression ~ ')']) -%}
    case when ({{ expression }}) is not null then encode(sha256(convert_to({{ keyed }}, 'UTF8')), 'hex') end
{%- endmacro %}


{% macro normalised_email(expression) -%}
    nullif(lower(trim({{ expression }})), '')
{%- endmacro %}


{% macro email_domain(expression) -%}
    nullif({{ dbt.split_part(boussole.normalised_email(expression), "'@'", 2) }}, '')
{%- endmacro %}
