{#-
    Personal data in staging. Emails, names and phone numbers never leave staging in clear:
    they become keyed hashes (pseudonyms), equal for equal inputs, so identities still join
    across sources (CRM contact email = Zendesk requester email) without being readable.

    pseudonymise(expression)     keyed hash (hex sha256 of key || '|' || value); null stays null
    normalised_email(expression) lower-case, trimmed; empty text becomes null (never a shared pseudonym)
    email_domain(expression)     the part after '@' of the normalised email (not personal: the
                                 organisation domain = company domain identity join needs it)

    The key never appears in SQL: the models read it at run time, from the session, so it is
    in no compiled file, artifact or log of dbt (a test scans them all). On DuckDB, the
    dbt-duckdb plugin boussole/dbt_pii_session.py sets the session variable boussole_pii_key
    from BOUSSOLE_PII_KEY on every connection dbt opens; on PostgreSQL, the setting
    boussole.pii_key comes with each connection (PGOPTIONS, set by boussole/dbt_invocation.py).
    A session without it fails rather than hash without the key. The models that pseudonymise
    are tables, not views, so that readers of the warehouse need no key.
-#}


{% macro pseudonymise(expression) -%}
    {{ return(adapter.dispatch('pseudonymise', 'boussole')(expression)) }}
{%- endmacro %}

{% macro default__pseudonymise(expression) -%}
    {{ exceptions.raise_compiler_error("pseudonymise: no way to pass the key at run time on " ~ adapter.type() ~ " (see macros/pii.sql)") }}
{%- endmacro %}

{% macro duckdb__pseudonymise(expression) -%}
    {%- set key = "coalesce(getvariable('boussole_pii_key')::varchar, error('BOUSSOLE_PII_KEY did not reach this dbt session (boussole/dbt_pii_session.py)'))" -%}
    case when ({{ expression }}) is not null then sha256({{ dbt.concat([key, "'|'", '(' ~ expression ~ ')']) }}) end
{%- endmacro %}

{% macro postgres__pseudonymise(expression) -%}
    {%- set keyed = dbt.concat(["current_setting('boussole.pii_key')", "'|'", '(' ~ expression ~ ')']) -%}
    case when ({{ expression }}) is not null then encode(sha256(convert_to({{ keyed }}, 'UTF8')), 'hex') end
{%- endmacro %}


{% macro normalised_email(expression) -%}
    nullif(lower(trim({{ expression }})), '')
{%- endmacro %}


{% macro email_domain(expression) -%}
    nullif({{ dbt.split_part(boussole.normalised_email(expression), "'@'", 2) }}, '')
{%- endmacro %}
