"""Acquisition channels and paid campaigns, shared by CRM (original source), web (UTM
parameters) and spend (ad platform costs) so that the three sources join on them."""

from __future__ import annotations

from dataclasses import dataclass

# HubSpot hs_analytics_source values; spend.channel uses the same names.
CHANNELS = (
    "ORGANIC_SEARCH",
    "PAID_SEARCH",
    "PAID_SOCIAL",
    "EMAIL_MARKETING",
    "DIRECT_TRAFFIC",
    "REFERRALS",
    "SOCIAL_MEDIA",
)


@dataclass(frozen=True)
class Campaign:
    channel: str
    source: str  # utm_source
    medium: str  # utm_medium
    name: str  # utm_campaign, ad platform campaign name and HubSpot source drill-down
    currency: str  # billing currency of the ad account
    daily_budget: float


# Names stay Latin-1 encodable: the latin1_csv fault re-encodes the spend file.
CAMPAIGNS = (
    Campaign("PAID_SEARCH", "google", "cpc", "Marque FR", "EUR", 60.0),
    Campaign("PAID_SEARCH", "google", "cpc", "Générique KPI", "EUR", 180.0),
    Campaign("PAID_SEARCH", "google", "cpc", "Concurrents", "EUR", 90.0),
    Campaign("PAID_SOCIAL", "linkedin", "paid_social", "LinkedIn Décideurs", "USD", 150.0),
    Campaign("PAID_SOCIAL", "linkedin", "paid_social", "Prévente Été", "USD", 80.0),
    Campaign("PAID_SOCIAL", "facebook", "paid_social", "Retargeting Démo", "EUR", 40.0),
    Campaign("EMAIL_MARKETING", "newsletter", "email", "Newsletter", "EUR", 12.0),
    Campaign("EMAIL_MARKETING", "hubspot", "email", "Nurturing", "EUR", 8.0),
)

# Channels without UTM tags: (source, medium, share within the channel) as GA4 reports them.
UNTAGGED_SOURCES = {
    "ORGANIC_SEARCH": (
        ("google", "organic", 0.86),
        ("bing", "organic", 0.09),
        ("qwant", "organic", 0.05),
    ),
    "DIRECT_TRAFFIC": (("(direct)", "(none)", 1.0),),
    "REFERRALS": (
        ("capterra.fr", "referral", 0.4),
        ("journaldunet.com", "referral", 0.25),
        ("ecosystem.hubspot.com", "referral", 0.35),
    ),
    "SOCIAL_MEDIA": (
        ("linkedin.com", "social", 0.7),
        ("twitter.com", "social", 0.1),
        ("youtube.com", "social", 0.2),
    ),
}


def campaigns_of(channel: str) -> tuple[Campaign, ...]:
    return tuple(c for c in CAMPAIGNS if c.channel == channel)
