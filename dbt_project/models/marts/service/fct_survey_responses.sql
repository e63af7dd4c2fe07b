-- One row per CRM feedback submission (NPS, CSAT, CES), with the NPS category of NPS answers.
-- The company is the respondent's associated CRM company, else the company of the
-- respondent's email domain; the country is the respondent's, else the company's.
with responses as (
    select
        submissions.submission_id,
        submissions.survey_type,
        coalesce(submissions.submitted_at, submissions.created_at) as response_at,
        submissions.response_value,
        submissions.contact_id,
        contacts.country as contact_country,
        coalesce(associated_companies.company_id, domain_companies.company_id) as company_id
    from {{ ref('stg_crm__feedback_submissions') }} as submissions
    left join {{ ref('stg_crm__contacts') }} as contacts
        on submissions.contact_id = contacts.contact_id
    left join {{ ref('stg_crm__companies') }} as associated_companies
        on contacts.company_id = associated_companies.company_id
    left join {{ ref('int_support__company_domains') }} as domain_companies
        on contacts.email_domain = domain_companies.company_domain
)

select
    responses.submission_id as response_id,
    responses.survey_type,
    responses.response_at,
    {{ reporting_date('responses.response_at') }} as response_date,
    responses.response_value as score,
    case
        when responses.survey_type <> 'NPS' then null
        when responses.response_value between 9 and 10 then 'promoter'
        when responses.response_value between 7 and 8 then 'passive'
        when responses.response_value between 0 and 6 then 'detractor'
    end as nps_category,
    responses.contact_id,
    responses.company_id,
    coalesce(responses.contact_country, companies.country) as country
from responses
left join {{ ref('stg_crm__companies') }} as companies
    on responses.company_id = companies.company_id
