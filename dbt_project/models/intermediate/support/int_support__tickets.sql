-- One row per current ticket with the dimensions every service fact is sliced by, so that
-- tickets, replies and ratings agree: channel and priority ('(not set)'), group name
-- ('(no group)'), pseudonymised requester, and the CRM company. The company comes from the
-- organisation's domains (the ticket's organisation, else the requester's), else from the
-- requester's email domain; null when neither names a CRM company.
with tickets as (
    select
        tickets.ticket_id,
        tickets.created_at,
        tickets.updated_at,
        tickets.status,
        tickets.priority,
        tickets.channel,
        tickets.ticket_type,
        tickets.requester_id,
        requesters.email_hash as requester_hash,
        requesters.email_domain as requester_email_domain,
        tickets.assignee_id,
        tickets.group_id,
        tickets.organization_id,
        coalesce(tickets.organization_id, requesters.organization_id) as company_organization_id,
        tickets.satisfaction_score,
        tickets.satisfaction_rating_id
    from {{ ref('stg_support__tickets') }} as tickets
    left join {{ ref('stg_support__users') }} as requesters
        on tickets.requester_id = requesters.user_id
),

organization_companies as (
    select
        organization_domains.organization_id,
        min(company_domains.company_id) as company_id
    from {{ ref('stg_support__organization_domains') }} as organization_domains
    inner join {{ ref('int_support__company_domains') }} as company_domains
        on organization_domains.domain_name = company_domains.company_domain
    group by organization_domains.organization_id
)

select
    tickets.ticket_id,
    tickets.created_at,
    tickets.updated_at,
    tickets.status,
    tickets.ticket_type,
    tickets.requester_id,
    tickets.requester_hash,
    tickets.assignee_id,
    tickets.group_id,
    {{ ticket_slice_columns('tickets') }},
    tickets.organization_id,
    coalesce(organization_companies.company_id, email_companies.company_id) as company_id,
    tickets.satisfaction_score,
    tickets.satisfaction_rating_id
from tickets
{{ ticket_slice_joins('tickets') }}
left join organization_companies
    on tickets.company_organization_id = organization_companies.organization_id
left join {{ ref('int_support__company_domains') }} as email_companies
    on tickets.requester_email_domain = email_companies.company_domain
