select
    publication_number,
    as_of_date,
    cast(published_at as timestamp) as published_at_utc,
    rows_published,
    restatements
from publications
