"""HubSpot CRM v3-shaped sample data.

The CRM is simulated from a warm-up period before the first extract day, so that the
first extract is a realistic full load (customers, open pipeline, running contracts) and
the following days are incremental: every lifecycle step, stage change, close, amendment
or archive is a new version of the record, landing on the day it happened.
"""

from __future__ import annotations

import bisect
import heapq
import math
import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from ._common import (
    DAY_MS,
    OFFICE_HOURS,
    ParisCalendar,
    RecordHistory,
    bucket_by_day,
    cumulative,
    day_factor,
    days_between,
    dumps,
    iso_ms,
    pick,
    poisson,
    slug,
    uuid_from,
)
from ._marketing import CHANNELS, UNTAGGED_SOURCES, campaigns_of
from ._names import COMPANY_KINDS, COMPANY_ROOTS, FREEMAIL_DOMAINS, person

if TYPE_CHECKING:  # generator imports this module
    from .generator import SampleScale

WARMUP_DAYS = 120
PORTAL_ID = 26123456

# Team name carries the sales region (owners have no region field in HubSpot).
TEAMS = (
    ("4101", "Ventes Île-de-France"),
    ("4102", "Ventes Régions"),
    ("4103", "Ventes International"),
)

# (id, label, stages as (id, label, isClosed, probability)); won and lost are told apart by
# metadata only: labels differ between pipelines and are not "won"/"lost".
PIPELINES = (
    (
        "default",
        "Pipeline des ventes",
        (
            ("appointmentscheduled", "Rendez-vous programmé", False, "0.2"),
            ("qualifiedtobuy", "Qualifié pour acheter", False, "0.4"),
            ("presentationscheduled", "Présentation programmée", False, "0.6"),
            ("decisionmakerboughtin", "Décideur convaincu", False, "0.8"),
            ("contractsent", "Contrat envoyé", False, "0.9"),
            ("closedwon", "Conclue gagnée", True, "1.0"),
            ("closedlost", "Conclue perdue", True, "0.0"),
        ),
    ),
    (
        "75412390",
        "Extensions et renouvellements",
        (
            ("151234501", "Besoin identifié", False, "0.3"),
            ("151234502", "Proposition envoyée", False, "0.6"),
            ("151234503", "Négociation", False, "0.8"),
            ("151234504", "Signé", True, "1.0"),
            ("151234505", "Abandonné", True, "0.0"),
        ),
    ),
)

CHANNEL_SHARES = (0.28, 0.18, 0.12, 0.08, 0.14, 0.12, 0.08)
CHANNEL_WEIGHTS = cumulative(CHANNEL_SHARES)
P_MQL = {
    "ORGANIC_SEARCH": 0.40,
    "PAID_SEARCH": 0.50,
    "PAID_SOCIAL": 0.34,
    "EMAIL_MARKETING": 0.46,
    "DIRECT_TRAFFIC": 0.38,
    "REFERRALS": 0.54,
    "SOCIAL_MEDIA": 0.28,
}
WIN_BY_CHANNEL = {"REFERRALS": 1.2, "PAID_SEARCH": 1.05, "SOCIAL_MEDIA": 0.8}
P_HAS_COMPANY = 0.88
P_SQL = 0.45

# product line -> (median amount EUR, spread, mean sales cycle days, recurring)
PRODUCTS = {
    "Boussole Cloud": (900.0, 0.6, 28, True),  # median is monthly recurring revenue
    "Boussole On-Premise": (35000.0, 0.5, 55, False),
    "Services": (9000.0, 0.6, 35, False),
    "Formation": (3500.0, 0.4, 18, False),
}
PRODUCT_NAMES = tuple(PRODUCTS)
NEW_BUSINESS_MIX = cumulative((0.5, 0.15, 0.2, 0.15))
EXPANSION_MIX = cumulative((0.45, 0.0, 0.35, 0.2))
CONTRACT_MONTHS = (6, 12, 12, 12, 24, 36)
# EUR -> deal currency, rough: amounts are quoted in round numbers of the local currency.
QUOTE_RATE = {"EUR": 1.0, "USD": 1.08, "GBP": 0.85}

COUNTRIES = (
    ("France", ("Paris", "Île-de-France"), 0.30),
    ("France", ("Boulogne-Billancourt", "Île-de-France"), 0.08),
    ("France", ("Lyon", "Auvergne-Rhône-Alpes"), 0.08),
    ("France", ("Nantes", "Pays de la Loire"), 0.05),
    ("France", ("Lille", "Hauts-de-France"), 0.05),
    ("France", ("Bordeaux", "Nouvelle-Aquitaine"), 0.05),
    ("France", ("Toulouse", "Occitanie"), 0.04),
    ("France", ("Marseille", "Provence-Alpes-Côte d'Azur"), 0.03),
    ("France", ("Rennes", "Bretagne"), 0.02),
    ("Belgium", ("Bruxelles", "Bruxelles-Capitale"), 0.06),
    ("Switzerland", ("Genève", "Genève"), 0.05),
    ("Germany", ("Berlin", "Berlin"), 0.04),
    ("Spain", ("Madrid", "Madrid"), 0.03),
    ("United Kingdom", ("London", "England"), 0.05),
    ("United States", ("New York", "New York"), 0.04),
    ("Canada", ("Montréal", "Québec"), 0.03),
)
COUNTRY_WEIGHTS = cumulative([c[2] for c in COUNTRIES])
CURRENCY_BY_COUNTRY = {"United Kingdom": "GBP", "United States": "USD", "Canada": "USD"}
TLD_BY_COUNTRY = {
    "France": "fr",
    "Belgium": "be",
    "Switzerland": "ch",
    "Germany": "de",
    "Spain": "es",
    "United Kingdom": "co.uk",
    "United States": "com",
    "Canada": "ca",
}

NPS_WEIGHTS = cumulative((2, 1, 2, 2, 3, 4, 6, 10, 16, 24, 30))
CSAT_WEIGHTS = cumulative((5, 7, 13, 35, 40))
CES_WEIGHTS = cumulative((3, 5, 8, 14, 25, 27, 18))
MONTHS_FR = (
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
)
NEWSLETTER_SUBJECTS = (
    "5 KPI à suivre ce trimestre",
    "Nouveau : les alertes sur objectifs",
    "Comment calculer votre CAC sans tableur",
    "Retour d'expérience : un pipeline qui accélère",
    "Le NPS expliqué à votre comité de direction",
)


@dataclass
class Owner:
    id: str
    team: int
    skill: float
    hired_ms: int
    history: RecordHistory


@dataclass
class Company:
    id: str
    name: str
    domain: str
    country: str
    currency: str
    team: int
    owner: Owner
    created_ms: int
    history: RecordHistory
    has_deals: bool = False


@dataclass
class Contact:
    id: str
    email: str
    name: str
    company: Company | None
    source: str
    created_ms: int
    subscribed: bool
    date_format: Any
    history: RecordHistory
    owner_id: str | None = None
    archived_ms: int | None = None
    customer_ms: int | None = None
    blocked_ms: int | None = None  # unsubscribed or hard bounced


@dataclass(frozen=True)
class Customer:
    """A contact who became a customer: support requester and survey respondent."""

    contact_id: str
    email: str
    name: str
    company_id: str | None
    since_s: int


@dataclass(frozen=True)
class CompanyRef:
    id: str
    name: str
    domain: str
    created_s: int


@dataclass(frozen=True)
class WonDeal:
    close_s: int
    team: str
    amount: float
    currency: str


@dataclass
class CrmResult:
    files: dict[str, dict[date, list[str]]]
    pipelines: dict[str, Any]
    leads_by_day: dict[date, list[str]]  # contact ids by Paris creation date (for GA4 user_id)
    customers: list[Customer]  # by since_s
    companies: list[CompanyRef]
    won_deals: list[WonDeal]
    team_headcount: dict[str, int] = field(default_factory=dict)


def _reachable(contact: Contact, ts: int) -> bool:
    """Subscribed, not archived, not unsubscribed nor hard-bounced at ts."""
    return (
        contact.subscribed
        and (contact.archived_ms is None or contact.archived_ms > ts)
        and (contact.blocked_ms is None or contact.blocked_ms > ts)
    )


class _Ids:
    """HubSpot-like numeric string ids: increasing, with gaps."""

    def __init__(self, rng: random.Random, start: int, max_gap: int) -> None:
        self._rng, self._next, self._max_gap = rng, start, max_gap

    def __call__(self) -> str:
        self._next += self._rng.randint(1, self._max_gap)
        return str(self._next)


def _money(value: float) -> str:
    return f"{value:.2f}"


def _add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    return date(year, month, min(day.day, 28))


def _assoc(kind: str, ids: list[str], target: str) -> dict[str, Any]:
    return {"results": [{"id": i, "type": f"{kind}_to_{target}"} for i in ids]}


def _stamp_object(doc: dict[str, Any], ts: int) -> None:
    doc["updatedAt"] = iso_ms(ts)
    doc["properties"]["hs_lastmodifieddate"] = iso_ms(ts)


def _stamp_contact(doc: dict[str, Any], ts: int) -> None:
    doc["updatedAt"] = iso_ms(ts)
    doc["properties"]["lastmodifieddate"] = iso_ms(ts)


def _stamp_owner(doc: dict[str, Any], ts: int) -> None:
    doc["updatedAt"] = iso_ms(ts)


def pipelines_document() -> dict[str, Any]:
    return {
        "results": [
            {
                "id": pid,
                "label": label,
                "displayOrder": order,
                "archived": False,
                "stages": [
                    {
                        "id": sid,
                        "label": slabel,
                        "displayOrder": i,
                        "metadata": {"isClosed": "true" if closed else "false", "probability": p},
                        "archived": False,
                    }
                    for i, (sid, slabel, closed, p) in enumerate(stages)
                ],
            }
            for order, (pid, label, stages) in enumerate(PIPELINES)
        ]
    }


class _CrmSimulation:
    def __init__(
        self, rng: random.Random, cal: ParisCalendar, scale: SampleScale, start: date, end: date
    ) -> None:
        self.rng, self.cal, self.scale, self.start, self.end = rng, cal, scale, start, end
        self.warmup_start = start - timedelta(days=WARMUP_DAYS)
        self.end_ms = cal.midnight(end + timedelta(days=1)) * 1000
        self.start_ms = cal.midnight(start) * 1000
        self.owners: list[Owner] = []
        self.companies: list[Company] = []
        self.contacts: list[Contact] = []
        self.deals: list[RecordHistory] = []
        self.activities: dict[str, list[RecordHistory]] = {
            "calls": [],
            "emails": [],
            "meetings": [],
        }
        self.won: list[WonDeal] = []
        self.email_events: list[list[tuple[int, str]]] = []
        self.email_campaigns: list[list[tuple[int, str]]] = []
        self.feedback: list[RecordHistory] = []
        self.emails_used: set[str] = set()
        self.contact_ids = _Ids(rng, 151_000, 40)
        self.company_ids = _Ids(rng, 8_412_000_000, 5000)
        self.deal_ids = _Ids(rng, 21_480_000_000, 90_000)
        self.activity_ids = _Ids(rng, 40_100_000_000, 9000)
        self.misc_ids = _Ids(rng, 301_000_000, 700)

    # -- helpers ------------------------------------------------------------------------
    def office_ms(self, day: date) -> int:
        return self.cal.random_time(self.rng, day, OFFICE_HOURS) * 1000 + self.rng.randrange(1000)

    def later_office_ms(self, ts_ms: int, days: float) -> int:
        ts = self.cal.workday_moment(self.rng, ts_ms // 1000, days)
        return ts * 1000 + self.rng.randrange(1000)

    def active_owners(self, ts_ms: int, team: int | None = None) -> list[Owner]:
        owners = [o for o in self.owners if o.hired_ms <= ts_ms]
        in_team = [o for o in owners if o.team == team]
        return in_team or owners

    def unique_email(self, local: str, domain: str) -> str:
        email, n = f"{local}@{domain}", 1
        while email in self.emails_used:
            n += 1
            email = f"{local}{n}@{domain}"
        self.emails_used.add(email)
        return email

    # -- owners and companies -------------------------------------------------------------
    def make_owners(self) -> None:
        rng, count = self.rng, max(1, self.scale.owners)
        long_ago = self.cal.midnight(self.warmup_start - timedelta(days=1100)) * 1000
        owner_ids = _Ids(rng, 61_000_000, 900_000)
        for i in range(count):
            first, last = person(rng)
            team = i % len(TEAMS)
            # The last owner is hired mid-period, so owners.jsonl has a later re-export.
            hired = long_ago + rng.randrange(300) * DAY_MS
            if count >= 4 and i == count - 1:
                hired = self.later_office_ms(self.start_ms, (self.end - self.start).days / 2)
            owner_id = owner_ids()
            doc = {
                "id": owner_id,
                "email": self.unique_email(f"{slug(first)}.{slug(last)}", "boussole-demo.fr"),
                "firstName": first,
                "lastName": last,
                "userId": 9_100_000 + i,
                "teams": [{"id": TEAMS[team][0], "name": TEAMS[team][1], "primary": True}],
                "createdAt": iso_ms(hired),
                "updatedAt": iso_ms(hired),
                "archived": False,
            }
            self.owners.append(
                Owner(owner_id, team, rng.uniform(0.75, 1.25), hired, RecordHistory(doc, hired))
            )
        if count >= 3:  # one owner moves team during the period
            mover = self.owners[1]
            mover.team = (mover.team + 1) % len(TEAMS)
            moved = self.later_office_ms(self.start_ms, (self.end - self.start).days * 2 / 5)
            tid, tname = TEAMS[mover.team]
            mover.history.change(moved, teams=[{"id": tid, "name": tname, "primary": True}])

    def make_companies(self) -> None:
        rng, total = self.rng, max(1, self.scale.companies)
        names: set[str] = set()
        span_days = (self.end - self.warmup_start).days + 1
        created_days = sorted(
            self.warmup_start - timedelta(days=rng.randrange(1, 700))
            if i < total // 2
            else self.warmup_start + timedelta(days=rng.randrange(span_days))
            for i in range(total)
        )
        for day in created_days:
            kind, industry = rng.choice(COMPANY_KINDS)
            base = f"{rng.choice(COMPANY_ROOTS)} {kind}"
            name, n = base, 1
            while name in names:  # homonyms get a suffix, as in company registers
                n += 1
                name = f"{base} {n}"
            names.add(name)
            country, (city, state), _ = pick(rng, COUNTRIES, COUNTRY_WEIGHTS)
            team = 2 if country != "France" else (0 if state == "Île-de-France" else 1)
            created = self.office_ms(day)
            owner = rng.choice(self.active_owners(created, team))
            company_id = self.company_ids()
            domain = f"{slug(name)}.{TLD_BY_COUNTRY[country]}"
            doc = {
                "id": company_id,
                "properties": {
                    "name": name,
                    "domain": domain,
                    "country": country,
                    "city": city,
                    "state": state,
                    "industry": industry,
                    "numberofemployees": str(int(rng.lognormvariate(math.log(120), 1.1)) + 5),
                    "createdate": iso_ms(created),
                    "hubspot_owner_id": owner.id,
                    "hs_object_id": company_id,
                    "hs_lastmodifieddate": iso_ms(created),
                },
                "createdAt": iso_ms(created),
                "updatedAt": iso_ms(created),
                "archived": False,
            }
            history = RecordHistory(doc, created)
            if rng.random() < 0.25:  # headcount refreshed by enrichment
                later = created + rng.randrange(max(1, self.end_ms + 30 * DAY_MS - created))
                headcount = str(int(rng.lognormvariate(math.log(120), 1.1)) + 5)
                history.change(later, {"numberofemployees": headcount})
            currency = CURRENCY_BY_COUNTRY.get(country, "EUR")
            self.companies.append(
                Company(company_id, name, domain, country, currency, team, owner, created, history)
            )

    # -- contacts and the funnel ------------------------------------------------------------
    def make_contacts(self) -> list[tuple[int, Contact]]:
        """Contacts day by day; returns (SQL moment, contact) pairs that will open deals."""
        rng, sqls = self.rng, []
        for day in days_between(self.warmup_start, self.end):
            for _ in range(poisson(rng, self.scale.contacts_per_day * day_factor(day, self.start))):
                sql = self.make_contact(day)
                if sql is not None:
                    sqls.append(sql)
        return sqls

    def make_contact(self, day: date) -> tuple[int, Contact] | None:
        rng = self.rng
        created = self.office_ms(day)
        first, last = person(rng)
        existing = [c for c in self.companies if c.created_ms <= created]
        company = None
        if existing and rng.random() < P_HAS_COMPANY:
            recent = [c for c in existing[-8:] if created - c.created_ms < 30 * DAY_MS]
            company = rng.choice(recent) if recent and rng.random() < 0.4 else rng.choice(existing)
        domain = company.domain if company else rng.choice(FREEMAIL_DOMAINS)
        email = self.unique_email(f"{slug(first)}.{slug(last)}", domain)
        channel = pick(rng, CHANNELS, CHANNEL_WEIGHTS)
        campaigns = campaigns_of(channel)
        if campaigns:
            source_detail: str | None = rng.choice(campaigns).name
        else:
            sources = UNTAGGED_SOURCES[channel]
            source_detail = pick(rng, sources, cumulative([w for *_, w in sources]))[0]
            if channel == "DIRECT_TRAFFIC":
                source_detail = None
        # HubSpot returns some date properties as epoch-millisecond strings: mix both.
        date_format = str if rng.random() < 0.3 else iso_ms
        contact_id = self.contact_ids()
        country = company.country if company else pick(rng, COUNTRIES, COUNTRY_WEIGHTS)[0]
        doc = {
            "id": contact_id,
            "properties": {
                "email": email,
                "firstname": first,
                "lastname": last,
                "phone": (
                    f"+33 6 {rng.randrange(100):02d} {rng.randrange(100):02d} "
                    f"{rng.randrange(100):02d} {rng.randrange(100):02d}"
                    if rng.random() < 0.6
                    else None
                ),
                "lifecyclestage": "lead",
                "createdate": iso_ms(created),
                "hs_lifecyclestage_lead_date": date_format(created),
                "hs_lifecyclestage_marketingqualifiedlead_date": None,
                "hs_lifecyclestage_salesqualifiedlead_date": None,
                "hs_lifecyclestage_customer_date": None,
                "hs_analytics_source": channel,
                "hs_analytics_source_data_1": source_detail,
                "country": country,
                "associatedcompanyid": company.id if company else None,
                "hubspot_owner_id": None,
                "hs_object_id": contact_id,
                "lastmodifieddate": iso_ms(created),
            },
            "createdAt": iso_ms(created),
            "updatedAt": iso_ms(created),
            "archived": False,
        }
        contact = Contact(
            contact_id,
            email,
            f"{first} {last}",
            company,
            channel,
            created,
            rng.random() < 0.75,
            date_format,
            RecordHistory(doc, created),
        )
        self.contacts.append(contact)
        if rng.random() < 0.025:  # spam or duplicate lead, archived by marketing ops
            contact.archived_ms = created + rng.randrange(3600_000, 3 * DAY_MS)
            contact.history.change(contact.archived_ms, archived=True)
            return None
        if rng.random() >= P_MQL[channel]:
            return None
        mql = self.later_office_ms(created, min(rng.expovariate(1 / 4), 30))
        team = company.team if company else 1
        owner = company.owner if company else rng.choice(self.active_owners(mql, team))
        contact.owner_id = owner.id
        contact.history.change(
            mql,
            {
                "lifecyclestage": "marketingqualifiedlead",
                "hs_lifecyclestage_marketingqualifiedlead_date": date_format(mql),
                "hubspot_owner_id": contact.owner_id,
            },
        )
        if rng.random() < 0.6:  # qualification call by the owner
            self.add_call(
                self.later_office_ms(mql, rng.uniform(0, 2)),
                contact.owner_id,
                [contact.id],
                [company.id] if company else [],
                [],
            )
        if company is None or rng.random() >= P_SQL:
            return None
        sql = self.later_office_ms(mql, rng.uniform(2, 20))
        contact.history.change(
            sql,
            {
                "lifecyclestage": "salesqualifiedlead",
                "hs_lifecyclestage_salesqualifiedlead_date": date_format(sql),
            },
        )
        return sql, contact

    def make_customer(self, contact: Contact, ts_ms: int) -> None:
        if contact.customer_ms is None:
            contact.customer_ms = ts_ms
            contact.history.change(
                ts_ms,
                {
                    "lifecyclestage": "customer",
                    "hs_lifecyclestage_customer_date": contact.date_format(ts_ms),
                },
            )

    # -- deals -------------------------------------------------------------------------------
    def make_deals(self, sqls: list[tuple[int, Contact]]) -> None:
        """New business from SQL contacts, topped up with expansion deals on customer companies
        so that the daily deal count averages scale.deals_per_day (unless SQLs alone exceed it)."""
        rng = self.rng
        starts: list[tuple[int, int, Contact | None]] = []
        for seq, (sql, contact) in enumerate(sqls):
            starts.append((self.later_office_ms(sql, rng.uniform(0, 3)), seq, contact))
        mean_mql = sum(P_MQL[c] * s for c, s in zip(CHANNELS, CHANNEL_SHARES, strict=True))
        sql_rate = self.scale.contacts_per_day * mean_mql * P_HAS_COMPANY * P_SQL
        expansion_rate = max(0.0, self.scale.deals_per_day - sql_rate)
        for day in days_between(self.warmup_start, self.end):
            for _ in range(poisson(rng, expansion_rate * day_factor(day, self.start))):
                starts.append((self.office_ms(day), len(starts), None))
        starts.sort(key=lambda s: (s[0], s[1]))

        pending_wins: list[tuple[int, int, Company, list[Contact]]] = []
        customers: list[Company] = []
        customer_contacts: dict[str, list[Contact]] = {}
        for created, seq, contact in starts:
            if created >= self.end_ms:
                break
            while pending_wins and pending_wins[0][0] <= created:
                _, _, company, contacts = heapq.heappop(pending_wins)
                if company.id not in customer_contacts:
                    customers.append(company)
                customer_contacts.setdefault(company.id, []).extend(contacts)
            if contact is not None:
                assert contact.company is not None
                outcome = self.make_deal(
                    created, contact.company, [contact], expansion=False, source=contact.source
                )
            elif customers:
                company = rng.choice(customers)
                outcome = self.make_deal(
                    created, company, customer_contacts[company.id][:2], expansion=True, source=""
                )
            else:
                continue
            if outcome is not None:
                close, company, contacts = outcome
                heapq.heappush(pending_wins, (close, seq, company, contacts))

    def make_deal(
        self,
        created: int,
        company: Company,
        contacts: list[Contact],
        *,
        expansion: bool,
        source: str,
    ) -> tuple[int, Company, list[Contact]] | None:
        """Simulate one deal; returns (close moment, company, contacts) when it is won."""
        rng = self.rng
        company.has_deals = True
        pipeline_id, _, stages = PIPELINES[1 if expansion else 0]
        open_stages = [s[0] for s in stages if not s[2]]
        won_stage = next(s[0] for s in stages if s[2] and s[3] == "1.0")
        lost_stage = next(s[0] for s in stages if s[2] and s[3] == "0.0")
        product = pick(rng, PRODUCT_NAMES, EXPANSION_MIX if expansion else NEW_BUSINESS_MIX)
        median, spread, cycle_days, recurring = PRODUCTS[product]
        if expansion:
            median, cycle_days = median * 0.6, cycle_days * 0.5
        rate = QUOTE_RATE[company.currency]
        value = max(50.0, round(rng.lognormvariate(math.log(median), spread) * rate / 50) * 50)
        months = rng.choice(CONTRACT_MONTHS) if recurring else 0
        mrr, amount = (value, value * months) if recurring else (None, value)
        owner = company.owner
        deal_id = self.deal_ids()
        doc = {
            "id": deal_id,
            "properties": {
                "dealname": f"{company.name} - {product}",
                "amount": _money(amount),
                "deal_currency_code": company.currency,
                "dealstage": open_stages[0],
                "pipeline": pipeline_id,
                "createdate": iso_ms(created),
                "closedate": iso_ms(created + int(cycle_days * DAY_MS)),  # expected close
                "hubspot_owner_id": owner.id,
                "product_line": product,
                "recurring_revenue_amount": _money(mrr) if mrr is not None else None,
                "contract_end_date": None,
                "hs_object_id": deal_id,
                "hs_lastmodifieddate": iso_ms(created),
            },
            "associations": {
                "companies": _assoc("deal", [company.id], "company"),
                "contacts": _assoc("deal", [c.id for c in contacts], "contact"),
            },
            "createdAt": iso_ms(created),
            "updatedAt": iso_ms(created),
            "archived": False,
        }
        history = RecordHistory(doc, created)
        self.deals.append(history)

        p_win = (0.62 if expansion else 0.30) * owner.skill * WIN_BY_CHANNEL.get(source, 1.0)
        won = rng.random() < p_win
        if won:
            path = [*open_stages[1:], won_stage]
        else:  # lost at any open stage
            path = [*open_stages[1 : rng.randrange(1, len(open_stages) + 1)], lost_stage]
        # A few deals are duplicates, archived soon after creation.
        archived_at = created + rng.randrange(DAY_MS, 5 * DAY_MS) if rng.random() < 0.02 else None
        t, discounted = created, False
        for step, stage in enumerate(path):
            t = self.later_office_ms(t, rng.expovariate(len(path) / cycle_days) + 0.1)
            if archived_at is not None and t >= archived_at:
                break
            props: dict[str, Any] = {"dealstage": stage}
            if not discounted and step >= 1 and rng.random() < 0.3:  # negotiated discount
                discounted = True
                factor = rng.uniform(0.8, 0.95)
                amount = round(amount * factor, 2)
                props["amount"] = _money(amount)
                if mrr is not None:
                    mrr = round(mrr * factor, 2)
                    props["recurring_revenue_amount"] = _money(mrr)
            if stage in (won_stage, lost_stage):
                props["closedate"] = iso_ms(t)
                if stage == won_stage and months:
                    end_day = _add_months(self.cal.date_of(t // 1000), months)
                    props["contract_end_date"] = end_day.isoformat()
            history.change(t, props)
        self.make_activities(created, min(t, archived_at or t), owner, company, contacts, deal_id)
        if archived_at is not None:
            history.change(archived_at, archived=True)
            return None
        if not won:
            return None
        if rng.random() < 0.06:  # amended after closing (signed order differs from quote)
            amended = round(amount * rng.uniform(0.85, 1.15), 2)
            history.change(self.later_office_ms(t, rng.uniform(2, 10)), {"amount": _money(amended)})
            amount = amended
        self.won.append(WonDeal(t // 1000, TEAMS[owner.team][1], amount, company.currency))
        if not expansion:
            for contact in contacts:
                self.make_customer(contact, t)
        return t, company, contacts

    # -- activities ----------------------------------------------------------------------------
    def _activity(
        self,
        kind: str,
        created: int,
        props: dict[str, Any],
        contacts: list[str],
        companies: list[str],
        deals: list[str],
    ) -> RecordHistory:
        activity_id = self.activity_ids()
        singular = kind[:-1]
        doc = {
            "id": activity_id,
            "properties": {
                **props,
                "hs_object_id": activity_id,
                "hs_lastmodifieddate": iso_ms(created),
            },
            "associations": {
                "contacts": _assoc(singular, contacts, "contact"),
                "companies": _assoc(singular, companies, "company"),
                "deals": _assoc(singular, deals, "deal"),
            },
            "createdAt": iso_ms(created),
            "updatedAt": iso_ms(created),
            "archived": False,
        }
        history = RecordHistory(doc, created)
        self.activities[kind].append(history)
        return history

    def add_call(
        self, ts: int, owner_id: str, contacts: list[str], companies: list[str], deals: list[str]
    ) -> None:
        rng = self.rng
        status = pick(rng, ("COMPLETED", "NO_ANSWER", "BUSY"), (0.75, 0.95, 1.0))
        duration = int(rng.lognormvariate(math.log(420_000), 0.7)) if status == "COMPLETED" else 0
        props = {
            "hs_timestamp": iso_ms(ts),
            "hubspot_owner_id": owner_id,
            "hs_call_title": "Appel de qualification" if not deals else "Point d'avancement",
            "hs_call_direction": "INBOUND" if rng.random() < 0.15 else "OUTBOUND",
            "hs_call_status": status,
            "hs_call_duration": str(duration),
        }
        self._activity(
            "calls", ts + duration + rng.randrange(600_000), props, contacts, companies, deals
        )

    def make_activities(
        self,
        created: int,
        closed: int,
        owner: Owner,
        company: Company,
        contacts: list[Contact],
        deal_id: str,
    ) -> None:
        """Calls, emails and meetings logged while the deal is open."""
        rng = self.rng
        contact_ids, companies, deals = [c.id for c in contacts], [company.id], [deal_id]
        first, last = self.cal.date_of(created // 1000), self.cal.date_of(closed // 1000)
        for day in days_between(first, last):
            if day.weekday() >= 5:
                continue
            if rng.random() < 0.14:
                self.add_call(self.office_ms(day), owner.id, contact_ids, companies, deals)
            if rng.random() < 0.25:
                ts = self.office_ms(day)
                props = {
                    "hs_timestamp": iso_ms(ts),
                    "hubspot_owner_id": owner.id,
                    "hs_email_direction": "INCOMING_EMAIL" if rng.random() < 0.3 else "EMAIL",
                    "hs_email_subject": f"{company.name} : suite de notre échange",
                    "hs_email_status": "SENT",
                }
                self._activity("emails", ts, props, contact_ids, companies, deals)
            if rng.random() < 0.06:
                start = self.office_ms(day)
                booked = min(start, max(created, start - rng.randrange(DAY_MS, 5 * DAY_MS)))
                minutes = rng.choice((30, 45, 60))
                props = {
                    "hs_timestamp": iso_ms(start),
                    "hubspot_owner_id": owner.id,
                    "hs_meeting_title": f"Démo Boussole - {company.name}",
                    "hs_meeting_start_time": iso_ms(start),
                    "hs_meeting_end_time": iso_ms(start + minutes * 60_000),
                    "hs_meeting_location": rng.choice(("Visio", "Téléphone", "Sur site")),
                    "hs_meeting_outcome": "SCHEDULED",
                }
                meeting = self._activity("meetings", booked, props, contact_ids, companies, deals)
                outcome = pick(
                    rng, ("COMPLETED", "NO_SHOW", "CANCELED", "RESCHEDULED"), (0.8, 0.87, 0.95, 1.0)
                )
                done = start + minutes * 60_000 + rng.randrange(3 * 3600_000)
                meeting.change(done, {"hs_meeting_outcome": outcome})

    # -- marketing emails and surveys -------------------------------------------------------------
    def make_marketing_emails(self) -> None:
        """Batch newsletters and webinars to subscribed contacts, a welcome email to new ones."""
        rng, sends = self.rng, []
        for day in days_between(self.start, self.end):
            if day.weekday() == 1 and ((day - self.start).days // 7) % 2 == 0:
                subject = NEWSLETTER_SUBJECTS[len(sends) % len(NEWSLETTER_SUBJECTS)]
                sends.append((day, 10, f"Newsletter {day:%d/%m/%Y}", subject, "newsletter"))
            if day.weekday() == 3 and 8 <= day.day <= 14:
                month = MONTHS_FR[day.month - 1]
                sends.append(
                    (
                        day,
                        11,
                        f"Webinaire {month} {day.year}",
                        "Webinaire : piloter ses KPI",
                        "prospects",
                    )
                )
        events: list[tuple[int, int, Contact, str]] = []
        for day, hour, name, subject, audience in sends:
            send_ms = (self.cal.midnight(day) + hour * 3600) * 1000
            campaign_id = self.misc_ids()
            self.email_campaigns.append(
                [(send_ms, self._campaign(campaign_id, name, subject, "BATCH_EMAIL"))]
            )
            for contact in self.contacts:
                is_customer = contact.customer_ms is not None and contact.customer_ms < send_ms
                if contact.created_ms < send_ms and not (audience == "prospects" and is_customer):
                    events.append((send_ms, len(events), contact, campaign_id))
        welcome_id = self.misc_ids()
        welcomes = [
            (c.created_ms + 300_000, c)
            for c in self.contacts
            if self.start_ms <= c.created_ms + 300_000 < self.end_ms
        ]
        if welcomes:
            first_welcome = min(ts for ts, _ in welcomes)
            self.email_campaigns.append(
                [
                    (
                        first_welcome,
                        self._campaign(
                            welcome_id, "Bienvenue", "Bienvenue chez Boussole", "AUTOMATED_EMAIL"
                        ),
                    )
                ]
            )
            first_seq = len(events)
            events.extend((ts, first_seq + i, c, welcome_id) for i, (ts, c) in enumerate(welcomes))
        events.sort(key=lambda e: (e[0], e[1]))
        for send_ms, _, contact, campaign_id in events:
            if _reachable(contact, send_ms):
                self.send_email(send_ms + rng.randrange(600_000), contact, campaign_id)

    def _campaign(self, campaign_id: str, name: str, subject: str, kind: str) -> str:
        return dumps({"id": campaign_id, "name": name, "subject": subject, "type": kind})

    def send_email(self, sent: int, contact: Contact, campaign_id: str) -> None:
        rng = self.rng
        sent_id = uuid_from(rng)

        def event(kind: str, ts: int, **extra: Any) -> None:
            # every event is a record of its own (one version), exported on its day
            self.email_events.append(
                [
                    (
                        ts,
                        dumps(
                            {
                                "id": sent_id if kind == "SENT" else uuid_from(rng),
                                "type": kind,
                                "created": ts,
                                "recipient": contact.email,
                                "emailCampaignId": campaign_id,
                                "portalId": PORTAL_ID,
                                "sentBy": {"id": sent_id, "created": sent},
                                **extra,
                            }
                        ),
                    )
                ]
            )

        event("SENT", sent)
        r = rng.random()
        if r < 0.01:
            event("DROPPED", sent + 1000, dropReason="PREVIOUSLY_BOUNCED")
        elif r < 0.03:
            event("BOUNCE", sent + rng.randrange(1000, 60_000), category="HARD_BOUNCE")
            contact.blocked_ms = sent
        else:
            delivered = sent + rng.randrange(1000, 30_000)
            event("DELIVERED", delivered)
            if rng.random() < 0.3:
                opened = delivered + int(min(rng.expovariate(1 / 4), 72) * 3_600_000)
                event("OPEN", opened)
                for _ in range(poisson(rng, 0.6)):  # repeated opens: KPIs count unique ones
                    event("OPEN", opened + rng.randrange(60_000, 2 * DAY_MS))
                if rng.random() < 0.16:
                    event(
                        "CLICK",
                        opened + rng.randrange(5000, 600_000),
                        url="https://www.boussole-demo.fr/ressources/guide-kpi",
                    )
            if rng.random() < 0.004:
                unsubscribed = delivered + rng.randrange(3_600_000, 2 * DAY_MS)
                event("UNSUBSCRIBED", unsubscribed)
                contact.blocked_ms = unsubscribed
            elif rng.random() < 0.0008:
                event("SPAMREPORT", delivered + rng.randrange(60_000, DAY_MS))

    def make_feedback(self, customers: list[Customer]) -> None:
        rng = self.rng
        survey_kinds = (
            ("NPS", 0.12, NPS_WEIGHTS, 0, "Enquête NPS trimestrielle"),
            ("CSAT", 0.05, CSAT_WEIGHTS, 1, "Satisfaction après accompagnement"),
            ("CES", 0.02, CES_WEIGHTS, 1, "Effort client"),
        )
        survey_ids = {kind: self.misc_ids() for kind, *_ in survey_kinds}
        since = [c.since_s * 1000 for c in customers]  # sorted
        for day in days_between(self.start, self.end):
            factor = day_factor(day, self.start)
            for kind, per_contact, weights, lowest, survey_name in survey_kinds:
                for _ in range(poisson(rng, self.scale.contacts_per_day * per_contact * factor)):
                    ts = self.office_ms(day)
                    eligible = bisect.bisect_left(since, ts)
                    if not eligible:
                        continue
                    respondent = customers[rng.randrange(eligible)]
                    value = pick(rng, range(lowest, lowest + len(weights)), weights)
                    submission_id = self.misc_ids()
                    doc = {
                        "id": submission_id,
                        "properties": {
                            "hs_survey_type": kind,
                            "hs_survey_id": survey_ids[kind],
                            "hs_survey_name": survey_name,
                            "hs_response_value": str(value),
                            "hs_submission_timestamp": iso_ms(ts),
                            "hs_contact_id": respondent.contact_id,
                            "hs_content": None,
                            "hs_object_id": submission_id,
                            "hs_lastmodifieddate": iso_ms(ts),
                        },
                        "createdAt": iso_ms(ts),
                        "updatedAt": iso_ms(ts),
                        "archived": False,
                    }
                    self.feedback.append(RecordHistory(doc, ts))

    def archive_idle_companies(self) -> None:
        """A few companies that never had a deal are archived (merged duplicates)."""
        idle = [c for c in self.companies if not c.has_deals]
        for company in idle[: max(1, len(idle) // 10)]:
            ts = self.later_office_ms(self.start_ms, (self.end - self.start).days * 3 / 4)
            if ts > company.created_ms:
                company.history.change(ts, archived=True)


def simulate(
    rng: random.Random, cal: ParisCalendar, scale: SampleScale, start: date, end: date
) -> CrmResult:
    sim = _CrmSimulation(rng, cal, scale, start, end)
    sim.make_owners()
    sim.make_companies()
    sqls = sim.make_contacts()
    sim.make_deals(sqls)
    sim.archive_idle_companies()
    sim.make_marketing_emails()
    customers = sorted(
        (
            Customer(
                c.id, c.email, c.name, c.company.id if c.company else None, c.customer_ms // 1000
            )
            for c in sim.contacts
            if c.customer_ms is not None and c.customer_ms < sim.end_ms
        ),
        key=lambda c: (c.since_s, c.contact_id),
    )
    sim.make_feedback(customers)

    def spread(histories: list[list[tuple[int, str]]]) -> dict[date, list[str]]:
        return bucket_by_day(histories, cal, start, end, per_second=1000)

    files = {
        "owners": spread([o.history.versions(_stamp_owner) for o in sim.owners]),
        "companies": spread([c.history.versions(_stamp_object) for c in sim.companies]),
        "contacts": spread([c.history.versions(_stamp_contact) for c in sim.contacts]),
        "deals": spread([d.versions(_stamp_object) for d in sim.deals]),
        **{
            kind: spread([a.versions(_stamp_object) for a in items])
            for kind, items in sim.activities.items()
        },
        "email_campaigns": spread(sim.email_campaigns),
        "email_events": spread(sim.email_events),
        "feedback_submissions": spread([f.versions(_stamp_object) for f in sim.feedback]),
    }
    leads_by_day: dict[date, list[str]] = {}
    for contact in sim.contacts:
        day = cal.date_of(contact.created_ms // 1000)
        if start <= day <= end and contact.archived_ms is None:
            leads_by_day.setdefault(day, []).append(contact.id)
    headcount: dict[str, int] = {}
    for owner in sim.owners:
        headcount[TEAMS[owner.team][1]] = headcount.get(TEAMS[owner.team][1], 0) + 1
    return CrmResult(
        files=files,
        pipelines=pipelines_document(),
        leads_by_day=leads_by_day,
        customers=customers,
        companies=[CompanyRef(c.id, c.name, c.domain, c.created_ms // 1000) for c in sim.companies],
        won_deals=[w for w in sim.won if w.close_s * 1000 < sim.end_ms],
        team_headcount=headcount,
    )
