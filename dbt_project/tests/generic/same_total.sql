{#-
    Fails when a total over the whole model differs from a total over another model: two
    aggregates, no join, so it stays cheap at any size. It guards what two incremental models
    must agree on and what the tests of the rows a build wrote cannot see: a row left stale
    because the build did not rewrite it (macros/test_scope.sql).
-#}
{% test same_total(model, total, other, other_total) %}
    select
        totals.model_total,
        totals.other_total
    from (
        select
            (select {{ total }} from {{ model }}) as model_total,
            (select {{ other_total }} from {{ other }}) as other_total
    ) as totals
    where totals.model_total is distinct from totals.other_total
{% endtest %}
