-- Product lines seen on current deals; '(not set)' is always a member, for deals without one.
select product_line from {{ ref('fct_deals') }}
union
select '(not set)' as product_line
