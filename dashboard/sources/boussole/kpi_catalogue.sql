select
    kpi_id,
    label_fr,
    label_en,
    description,
    formula,
    unit,
    currency,
    direction,
    category,
    kind,
    indicator_type,
    tier,
    owner_team,
    grains,
    slices,
    source_systems
from kpi_catalogue
