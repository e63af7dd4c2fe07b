-- Current companies with their sales region. The CRM country is free text or an ISO code
-- depending on the portal: the seed lists both, matched case-insensitively.
select
    companies.company_id,
    companies.company_name,
    companies.company_domain,
    companies.country,
    coalesce(country_regions.region, '(not set)') as region,
    companies.industry,
    companies.employee_count,
    companies.owner_id
from {{ ref('stg_crm__companies') }} as companies
left join {{ ref('country_regions') }} as country_regions
    on lower(trim(companies.country)) = lower(country_regions.country)
