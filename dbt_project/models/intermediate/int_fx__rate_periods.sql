-- Each FX rate holds from its date until the next known rate of the same currency, so a day
-- without a rate uses the latest earlier one (extract contract, spend/fx_rates.csv).
select
    currency,
    rate_date as valid_from,
    lead(rate_date) over (partition by currency order by rate_date) as valid_until,
    rate_to_reporting
from {{ ref('stg_spend__fx_rates') }}
