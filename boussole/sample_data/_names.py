"""Fictitious people and company names (French-speaking market), shared by CRM and support."""

from __future__ import annotations

import random

FIRST_NAMES = (
    "Camille", "Léa", "Manon", "Chloé", "Inès", "Sarah", "Julie", "Emma", "Clara", "Lucie",
    "Anaïs", "Pauline", "Marie", "Élodie", "Nathalie", "Sophie", "Aurélie", "Claire",
    "Thomas", "Nicolas", "Julien", "Maxime", "Antoine", "Hugo", "Lucas", "Louis", "Pierre",
    "Alexandre", "Mathieu", "Romain", "Kevin", "Sébastien", "François", "Jérôme", "Olivier",
    "Yanis", "Mehdi", "Karim", "Amadou", "Moussa", "Nadia", "Fatima", "Yasmine", "Jean",
)
LAST_NAMES = (
    "Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy",
    "Moreau", "Simon", "Laurent", "Lefèvre", "Michel", "Garcia", "David", "Bertrand", "Roux",
    "Vincent", "Fournier", "Morel", "Girard", "André", "Mercier", "Dupont", "Lambert",
    "Bonnet", "François", "Martinez", "Legrand", "Garnier", "Faure", "Rousseau", "Blanc",
    "Guérin", "Muller", "Henry", "Roussel", "Nicolas", "Perrin", "Morin", "Mathieu", "Diallo",
    "Benali", "Nguyen", "Traoré", "Haddad", "Peeters", "Janssens", "Keller", "Smith", "Brown",
)
FREEMAIL_DOMAINS = ("gmail.com", "outlook.fr", "yahoo.fr", "orange.fr", "free.fr", "hotmail.com")

COMPANY_ROOTS = (
    "Altavia", "Brindille", "Cobalt", "Dorsal", "Équinoxe", "Fénix", "Granit", "Hélios",
    "Iris", "Jade", "Kairos", "Lumen", "Mistral", "Nova", "Opale", "Pixel", "Quartz",
    "Rivage", "Sillage", "Tilia", "Ubik", "Véga", "Wagram", "Xylo", "Yuzu", "Zénith",
    "Aubépine", "Boréal", "Cèdre", "Duna", "Estran", "Falaise", "Garance", "Horizon",
)
# Company name suffix -> HubSpot industry value.
COMPANY_KINDS = (
    ("Logistique", "LOGISTICS_AND_SUPPLY_CHAIN"),
    ("Conseil", "MANAGEMENT_CONSULTING"),
    ("Industries", "INDUSTRIAL_AUTOMATION"),
    ("Santé", "HOSPITAL_HEALTH_CARE"),
    ("Retail", "RETAIL"),
    ("Finance", "FINANCIAL_SERVICES"),
    ("Énergie", "RENEWABLES_ENVIRONMENT"),
    ("Digital", "COMPUTER_SOFTWARE"),
    ("Transports", "TRANSPORTATION_TRUCKING_RAILROAD"),
    ("Immobilier", "REAL_ESTATE"),
    ("Agro", "FOOD_PRODUCTION"),
    ("Formation", "EDUCATION_MANAGEMENT"),
)


def person(rng: random.Random) -> tuple[str, str]:
    return rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
