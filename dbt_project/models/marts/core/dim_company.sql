-- One row per current company; first_won_date makes it a new customer in that period.
select
    companies.company_id,
    companies.company_name,
    companies.company_domain,
    companies.country,
    companies.region,
    companies.industry,
    companies.employee_count,
    companies.owner_id,
    first_won.close_date as first_won_date
from {{ ref('int_crm__companies') }} as companies
left join {{ ref('fct_deals') }} as first_won
    on companies.company_id = first_won.company_id and first_won.is_first_won_deal_of_company
