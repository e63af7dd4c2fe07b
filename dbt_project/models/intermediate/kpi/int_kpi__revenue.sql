-- revenue: sum of the amount of deals won, by close date, in the reporting currency.
{{ kpi_rows(
    kpi_id='revenue',
    relation=ref('fct_deals'),
    date_column='close_date',
    numerator='sum(amount_reporting)',
    where='is_won',
    slices={'product_line': 'product_line', 'pipeline': 'pipeline_label', 'deal_currency': 'currency_original'},
) }}
