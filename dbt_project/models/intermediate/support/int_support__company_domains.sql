-- One CRM company per web domain: the identity join of support organisations, requester and
-- respondent emails to CRM companies. Should two current companies share a domain, the
-- lowest company id wins, so that a ticket or a response never counts for two companies.
select
    company_domain,
    min(company_id) as company_id
from {{ ref('stg_crm__companies') }}
where company_domain is not null
group by company_domain
