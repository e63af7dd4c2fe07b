"""GA4 BigQuery export-shaped web events, one JSON object per line.

This is the large source (millions of events), so lines are assembled from JSON
fragments prepared once (pages, devices, places, traffic sources), when a session is
planned (each event's name and parameters) or once per session (user and session
columns); per event only the timestamp is formatted. Each event lands in the file of its
own Paris event_date, so a session crossing midnight is split over two extract days, as in
the GA4 daily export tables.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from urllib.parse import quote

from ._common import (
    DAY_S,
    WEB_HOURS,
    ParisCalendar,
    cumulative,
    day_factor,
    dumps_ascii,
    normalised,
    pick,
)
from ._marketing import CAMPAIGNS, UNTAGGED_SOURCES

HOST = "www.boussole-demo.fr"
SITE = f"https://{HOST}"
STREAM_ID = "4187330261"
WEB_WEEKDAY = normalised((1.1, 1.12, 1.1, 1.05, 0.95, 0.62, 0.58))
US = 1_000_000

PAGES = (
    ("/", "Boussole | Le tableau de bord KPI des PME"),
    ("/fonctionnalites", "Fonctionnalités | Boussole"),
    ("/tarifs", "Tarifs | Boussole"),
    ("/blog/calculer-son-cac", "Comment calculer son CAC | Blog Boussole"),
    ("/blog/nps-mode-emploi", "Le NPS, mode d'emploi | Blog Boussole"),
    ("/blog/kpi-commerciaux", "10 KPI commerciaux à suivre | Blog Boussole"),
    ("/ressources/guide-kpi", "Guide des KPI | Boussole"),
    ("/integrations/hubspot", "Intégration HubSpot | Boussole"),
    ("/clients", "Ils nous font confiance | Boussole"),
    ("/lp/tableau-de-bord-kpi", "Votre tableau de bord KPI en 10 minutes"),
    ("/webinaire", "Webinaire : piloter ses KPI | Boussole"),
    ("/connexion", "Connexion | Boussole"),
    ("/a-propos", "À propos | Boussole"),
    ("/demo", "Demander une démo | Boussole"),
    ("/demo/merci", "Merci ! | Boussole"),
    ("/inscription", "Essai gratuit | Boussole"),
    ("/inscription/bienvenue", "Bienvenue | Boussole"),
    ("/commande", "Commande | Boussole"),
    ("/commande/confirmation", "Confirmation de commande | Boussole"),
)
PAGE_INDEX = {path: i for i, (path, _) in enumerate(PAGES)}
BROWSE = tuple(
    PAGE_INDEX[p]
    for p in (
        "/",
        "/fonctionnalites",
        "/tarifs",
        "/blog/calculer-son-cac",
        "/blog/nps-mode-emploi",
        "/blog/kpi-commerciaux",
        "/ressources/guide-kpi",
        "/integrations/hubspot",
        "/clients",
        "/webinaire",
        "/a-propos",
    )
)
BROWSE_WEIGHTS = cumulative((10, 14, 16, 6, 5, 6, 8, 6, 7, 3, 3))
# Key-event funnels: pages appended to the visit; the key events fire on the last page.
FUNNELS = {
    "generate_lead": ("/demo", "/demo/merci"),
    "sign_up": ("/inscription", "/inscription/bienvenue"),
    "purchase": ("/tarifs", "/commande", "/commande/confirmation"),
}
PLANS = (49.0, 99.0, 199.0, 490.0, 990.0, 1990.0)  # self-serve subscriptions, EUR
PLAN_WEIGHTS = cumulative((30, 25, 10, 15, 12, 8))

DEVICES = (  # (category, operating system, browser, weight)
    ("desktop", "Windows", "Chrome", 35),
    ("desktop", "Macintosh", "Chrome", 10),
    ("desktop", "Macintosh", "Safari", 8),
    ("desktop", "Windows", "Edge", 10),
    ("desktop", "Windows", "Firefox", 4),
    ("desktop", "Linux", "Firefox", 2),
    ("mobile", "iOS", "Safari", 14),
    ("mobile", "Android", "Chrome", 12),
    ("tablet", "iOS", "Safari", 3),
    ("tablet", "Android", "Chrome", 2),
)
PLACES = (  # (country, region, city, weight)
    ("France", "Ile-de-France", "Paris", 30),
    ("France", "Ile-de-France", "Boulogne-Billancourt", 5),
    ("France", "Auvergne-Rhone-Alpes", "Lyon", 9),
    ("France", "Pays de la Loire", "Nantes", 5),
    ("France", "Hauts-de-France", "Lille", 5),
    ("France", "Nouvelle-Aquitaine", "Bordeaux", 5),
    ("France", "Occitanie", "Toulouse", 5),
    ("France", "Provence-Alpes-Cote d'Azur", "Marseille", 4),
    ("France", "Brittany", "Rennes", 3),
    ("France", "Grand Est", "Strasbourg", 3),
    ("Belgium", "Brussels", "Brussels", 5),
    ("Switzerland", "Geneva", "Geneva", 4),
    ("Canada", "Quebec", "Montreal", 4),
    ("United Kingdom", "England", "London", 3),
    ("United States", "New York", "New York", 2),
    ("Germany", "Berlin", "Berlin", 2),
    ("Morocco", "Casablanca-Settat", "Casablanca", 3),
    ("Senegal", "Dakar", "Dakar", 1),
)
# Channel -> (share of sessions, bounce probability, P(lead), P(sign-up), P(purchase) of
# engaged sessions)
CHANNEL_BEHAVIOUR = {
    "ORGANIC_SEARCH": (0.35, 0.45, 0.05, 0.025, 0.010),
    "DIRECT_TRAFFIC": (0.22, 0.40, 0.04, 0.030, 0.018),
    "PAID_SEARCH": (0.15, 0.38, 0.09, 0.040, 0.012),
    "PAID_SOCIAL": (0.08, 0.55, 0.06, 0.020, 0.004),
    "REFERRALS": (0.08, 0.35, 0.06, 0.030, 0.008),
    "SOCIAL_MEDIA": (0.06, 0.58, 0.03, 0.015, 0.003),
    "EMAIL_MARKETING": (0.06, 0.30, 0.08, 0.020, 0.010),
}
LANDINGS = {
    "ORGANIC_SEARCH": (
        "/",
        "/blog/calculer-son-cac",
        "/blog/nps-mode-emploi",
        "/blog/kpi-commerciaux",
        "/ressources/guide-kpi",
    ),
    "DIRECT_TRAFFIC": ("/", "/", "/connexion", "/tarifs"),
    "PAID_SEARCH": ("/lp/tableau-de-bord-kpi", "/tarifs", "/"),
    "PAID_SOCIAL": ("/lp/tableau-de-bord-kpi", "/ressources/guide-kpi"),
    "REFERRALS": ("/", "/integrations/hubspot", "/clients"),
    "SOCIAL_MEDIA": ("/blog/kpi-commerciaux", "/blog/nps-mode-emploi", "/"),
    "EMAIL_MARKETING": ("/webinaire", "/blog/calculer-son-cac", "/ressources/guide-kpi"),
}
SOCIAL_POSTS = "Posts organiques"  # organic social posts are UTM-tagged, without spend


def _string_param(key: str, value: str) -> str:
    return f'{{"key":"{key}","value":{{"string_value":{dumps_ascii(value)}}}}}'


def _int_param(key: str, value: int) -> str:
    return f'{{"key":"{key}","value":{{"int_value":{value}}}}}'


def _double_param(key: str, value: float) -> str:
    return f'{{"key":"{key}","value":{{"double_value":{value}}}}}'


# Pre-encoded JSON fragments. Event lines are laid out as
#   {"event_date":..,"event_timestamp":..,<body>,<session suffix>
# where the body (name, ecommerce, page parameters) is built when the session is planned and
# the suffix (session parameters, user, device, geo, traffic) once per session.
PAGE_FRAGMENTS = tuple(
    f"{_string_param('page_location', SITE + path)},{_string_param('page_title', title)}"
    for path, title in PAGES
)
REFERRER_FRAGMENTS = tuple(f",{_string_param('page_referrer', SITE + path)}" for path, _ in PAGES)
DEVICE_FRAGMENTS = tuple(
    dumps_ascii(
        {
            "category": c,
            "operating_system": os_,
            "language": "fr-fr",
            "web_info": {"browser": b, "hostname": HOST},
        }
    )
    for c, os_, b, _ in DEVICES
)
DEVICE_WEIGHTS = cumulative([d[3] for d in DEVICES])
PLACE_FRAGMENTS = tuple(
    dumps_ascii({"country": country, "region": region, "city": city})
    for country, region, city, _ in PLACES
)
PLACE_WEIGHTS = cumulative([p[3] for p in PLACES])
ENTRANCE = "," + _int_param("entrances", 1)
LEAD_PARAMS = "," + _string_param("form_id", "demande-demo")
SIGN_UP_PARAMS = "," + _string_param("method", "email")
SCROLL_PARAMS = "," + _int_param("percent_scrolled", 90)


def _body(name: str, page_part: str, params: str = "", ecommerce: str = "null") -> str:
    return f'"event_name":"{name}","ecommerce":{ecommerce},"event_params":[{page_part}{params},'


def _engagement(msec: int) -> str:
    return "," + _int_param("engagement_time_msec", msec)


@dataclass(frozen=True)
class _Traffic:
    channel: str
    source: str
    medium: str
    campaign: str
    tagged: bool  # UTM parameters on the landing URL (collected_traffic_source)
    gclid: bool
    first_touch: str  # traffic_source of users acquired by it
    referrer: str  # page_referrer parameter of the landing page ("" when there is none)
    # landing page index -> page parameters of the landing visit: page_location (with the
    # UTM query string when tagged), page_title, and source/medium/campaign, which GA4
    # records on the events of the landing page
    landings: dict[int, str]


def _traffic(channel: str, source: str, medium: str, campaign: str, tagged: bool) -> _Traffic:
    params = (
        f",{_string_param('source', source)},{_string_param('medium', medium)},"
        f"{_string_param('campaign', campaign)}"
    )
    query = (
        (f"?utm_source={quote(source)}&utm_medium={quote(medium)}&utm_campaign={quote(campaign)}")
        if tagged
        else ""
    )
    landings = {
        PAGE_INDEX[path]: (
            f"{_string_param('page_location', SITE + path + query)},"
            f"{_string_param('page_title', PAGES[PAGE_INDEX[path]][1])}{params}"
        )
        for path in LANDINGS[channel]
    }
    first_touch = dumps_ascii({"name": campaign, "medium": medium, "source": source})
    if channel in ("DIRECT_TRAFFIC", "EMAIL_MARKETING"):  # typed URL, bookmark, mail client
        referrer = ""
    elif channel in ("REFERRALS", "SOCIAL_MEDIA"):
        referrer = "," + _string_param("page_referrer", f"https://{source}/")
    else:  # search engines and ad networks
        referrer = "," + _string_param("page_referrer", f"https://www.{source}.com/")
    return _Traffic(
        channel,
        source,
        medium,
        campaign,
        tagged,
        source == "google" and tagged,
        first_touch,
        referrer,
        landings,
    )


def _traffic_mix() -> tuple[list[_Traffic], list[float]]:
    items: list[_Traffic] = []
    weights: list[float] = []
    untagged_campaign = {
        "ORGANIC_SEARCH": "(organic)",
        "DIRECT_TRAFFIC": "(direct)",
        "REFERRALS": "(referral)",
    }
    for channel, (share, *_) in CHANNEL_BEHAVIOUR.items():
        campaigns = [c for c in CAMPAIGNS if c.channel == channel]
        if campaigns:
            budget = sum(c.daily_budget for c in campaigns)
            for c in campaigns:
                items.append(_traffic(channel, c.source, c.medium, c.name, True))
                weights.append(share * c.daily_budget / budget)
        else:
            sources = UNTAGGED_SOURCES[channel]
            for source, medium, within in sources:
                if channel == "SOCIAL_MEDIA":  # organic posts carry UTM tags, without spend
                    items.append(_traffic(channel, source, medium, SOCIAL_POSTS, True))
                else:
                    items.append(
                        _traffic(channel, source, medium, untagged_campaign[channel], False)
                    )
                weights.append(share * within)
    return items, cumulative(weights)


TRAFFIC, TRAFFIC_WEIGHTS = _traffic_mix()


class _User:
    __slots__ = (
        "device",
        "first_touch_us",
        "last_end_s",
        "place",
        "pseudo_id",
        "sessions",
        "traffic",
        "user_id",
    )

    def __init__(
        self, pseudo_id: str, first_touch_us: int, device: str, place: str, traffic: str
    ) -> None:
        self.pseudo_id, self.first_touch_us = pseudo_id, first_touch_us
        self.device, self.place, self.traffic = device, place, traffic
        self.sessions, self.user_id, self.last_end_s = 0, "null", 0


@dataclass
class _Plan:
    """One session before it is given a start time and a user."""

    traffic: _Traffic
    events: list[tuple[int, str]]  # (offset from the start in microseconds, body)
    first_visit: str  # body of first_visit, logged if the user turns out to be new
    engaged: str  # session_engaged: "1" or "0"
    identifies: bool  # a lead or sign-up form: the user becomes a known CRM contact


NEW_USER_SHARE = 0.7  # sessions of first-time visitors (they also log first_visit)


class WebSimulator:
    """Generates one extract day of events at a time; keeps returning users across days."""

    def __init__(
        self,
        rng: random.Random,
        cal: ParisCalendar,
        events_per_day: int,
        start: date,
        leads_by_day: dict[date, list[str]],
        fx: dict[date, dict[str, float]],
    ) -> None:
        self.rng, self.cal, self.events_per_day, self.start = rng, cal, events_per_day, start
        self.leads_by_day = {d: list(ids) for d, ids in leads_by_day.items()}
        self.fx = fx
        self.pool: list[_User] = []
        self.eur_per_usd = 1.0  # of the day being generated
        self.carry: list[str] = []  # events after midnight of sessions started the day before
        self._seed_returning_users()

    def _new_user(self, first_touch_s: int, traffic: _Traffic) -> _User:
        random_ = self.rng.random
        return _User(
            f"{100_000_000 + int(random_() * 2_000_000_000)}.{first_touch_s}",
            first_touch_s * US + int(random_() * US),
            pick(self.rng, DEVICE_FRAGMENTS, DEVICE_WEIGHTS),
            pick(self.rng, PLACE_FRAGMENTS, PLACE_WEIGHTS),
            traffic.first_touch,
        )

    def _seed_returning_users(self) -> None:
        """Visitors from before the first extract, so that not every user is new on day one."""
        rng, start_s = self.rng, self.cal.midnight(self.start)
        for _ in range(min(50_000, self.events_per_day // 2)):
            first_touch = start_s - rng.randrange(DAY_S, 180 * DAY_S)
            user = self._new_user(first_touch, pick(rng, TRAFFIC, TRAFFIC_WEIGHTS))
            user.sessions = rng.randint(1, 6)
            user.last_end_s = first_touch
            self.pool.append(user)

    def _plan(self, day_tag: str, counter: list[int]) -> _Plan:
        """The shape of one session: traffic, pages, dwell times and key events."""
        rng = self.rng
        random_ = rng.random
        traffic = pick(rng, TRAFFIC, TRAFFIC_WEIGHTS)
        _, p_bounce, p_lead, p_signup, p_purchase = CHANNEL_BEHAVIOUR[traffic.channel]
        landings = list(traffic.landings)
        landing = landings[int(random_() * len(landings))]
        landing_part = traffic.landings[landing]
        opening = landing_part + traffic.referrer
        events = [(0, _body("session_start", opening))]
        first_visit = _body("first_visit", opening)
        if random_() < p_bounce:
            events.append((0, _body("page_view", opening, ENTRANCE)))
            if random_() < 0.5:
                dwell = US + int(random_() * 8 * US)
                engagement = _engagement(dwell // 1000)
                events.append((dwell, _body("user_engagement", opening, engagement)))
            return _Plan(traffic, events, first_visit, "0", False)
        pages = [landing]
        while len(pages) < 8 and random_() < 0.55:
            pages.append(pick(rng, BROWSE, BROWSE_WEIGHTS))
        r, key = random_(), ""
        if r < p_lead:
            key = "generate_lead"
        elif r < p_lead + p_signup:
            key = "sign_up"
        elif r < p_lead + p_signup + p_purchase:
            key = "purchase"
        if key:
            pages.extend(PAGE_INDEX[p] for p in FUNNELS[key])
        t, last = 0, len(pages) - 1
        for i, page in enumerate(pages):
            part = opening if i == 0 else PAGE_FRAGMENTS[page] + REFERRER_FRAGMENTS[pages[i - 1]]
            dwell = int(rng.lognormvariate(3.4, 0.8) * US) + 11 * US
            events.append((t, _body("page_view", part, ENTRANCE if i == 0 else "")))
            if random_() < 0.4:
                events.append((t + dwell * 7 // 10, _body("scroll", part, SCROLL_PARAMS)))
            if key and i == last:
                events.extend(self._key_events(key, t, part, day_tag, counter))
            events.append(
                (t + dwell, _body("user_engagement", part, _engagement(dwell * 85 // 100_000)))
            )
            t += dwell + US // 2 + int(random_() * 2.5 * US)
        return _Plan(traffic, events, first_visit, "1", key in ("generate_lead", "sign_up"))

    def _key_events(
        self, key: str, t: int, part: str, day_tag: str, counter: list[int]
    ) -> list[tuple[int, str]]:
        rng = self.rng
        at = t + US // 2 + int(rng.random() * 1.5 * US)
        if key == "generate_lead":
            return [
                (at, _body("form_submit", part, LEAD_PARAMS)),
                (at + 1000, _body("generate_lead", part, LEAD_PARAMS)),
            ]
        if key == "sign_up":
            return [(at, _body("sign_up", part, SIGN_UP_PARAMS))]
        counter[0] += 1
        transaction = f"T-{day_tag}-{counter[0]:05d}"
        revenue = pick(rng, PLANS, PLAN_WEIGHTS)
        ecommerce = dumps_ascii(
            {
                "transaction_id": transaction,
                "purchase_revenue": revenue,
                "purchase_revenue_in_usd": round(revenue / self.eur_per_usd, 2),
                "total_item_quantity": 1,
            }
        )
        params = (
            f",{_string_param('transaction_id', transaction)},"
            f"{_double_param('value', revenue)},{_string_param('currency', 'EUR')}"
        )
        events = [(at, _body("purchase", part, params, ecommerce))]
        if rng.random() < 0.04:  # the confirmation page reloaded: GA4 counts it twice
            events.append((at + 2 * US, events[0][1]))
        return events

    def _suffix(self, plan: _Plan, user: _User, start_s: int) -> str:
        """Session parameters, then the user- and session-level columns."""
        traffic = plan.traffic
        if traffic.tagged:
            gclid = f"Cj0KCQiA{self.rng.getrandbits(64):016x}" if traffic.gclid else None
            collected = dumps_ascii(
                {
                    "manual_source": traffic.source,
                    "manual_medium": traffic.medium,
                    "manual_campaign_name": traffic.campaign,
                    "gclid": gclid,
                }
            )
        else:
            collected = "null"
        return (
            f"{_int_param('ga_session_id', start_s)},"
            f"{_int_param('ga_session_number', user.sessions)},"
            f"{_string_param('session_engaged', plan.engaged)}],"
            f'"user_pseudo_id":"{user.pseudo_id}","user_id":{user.user_id},'
            f'"user_first_touch_timestamp":{user.first_touch_us},"device":{user.device},'
            f'"geo":{user.place},"traffic_source":{user.traffic},'
            f'"collected_traffic_source":{collected},"platform":"WEB",'
            f'"stream_id":"{STREAM_ID}"}}'
        )

    def events_for(self, day: date, last_day: bool) -> list[str]:
        """Lines of the day's events.jsonl: yesterday's after-midnight events, then today's."""
        rng, cal = self.rng, self.cal
        random_ = rng.random
        mean = self.events_per_day * day_factor(day, self.start, WEB_WEEKDAY)
        target = max(0, round(mean * (1 + rng.gauss(0, 0.05))))
        day_tag = f"{day:%Y%m%d}"
        head = f'{{"event_date":"{day_tag}","event_timestamp":'
        next_head = f'{{"event_date":"{day + timedelta(days=1):%Y%m%d}","event_timestamp":'
        next_midnight_us = cal.midnight(day + timedelta(days=1)) * US
        self.eur_per_usd = self.fx[day]["USD"]
        counter = [0]
        plans: list[_Plan] = []
        planned = 0.0
        while planned < target:
            plan = self._plan(day_tag, counter)
            plans.append(plan)
            planned += len(plan.events) + NEW_USER_SHARE  # (+ first_visit)
        starts = sorted(cal.random_time(rng, day, WEB_HOURS) for _ in plans)
        leads = self.leads_by_day.get(day, [])
        lines, carry, new_users = self.carry, [], []
        append, carry_append = lines.append, carry.append
        pool, p_return = self.pool, 1 - NEW_USER_SHARE
        for plan, start_s in zip(plans, starts, strict=True):
            user = None
            if pool and random_() < p_return:
                user = pool[int(random_() * len(pool))]
                if user.last_end_s >= start_s:  # still in an earlier session: someone else
                    user = None
            start_us = start_s * US + int(random_() * US)
            first_visit = user is None
            if user is None:
                user = self._new_user(start_s, plan.traffic)
                new_users.append(user)
            user.sessions += 1
            if plan.identifies and leads and random_() < 0.7:
                user.user_id = dumps_ascii(leads.pop(0))  # the lead form creates the CRM contact
            suffix = self._suffix(plan, user, start_s)
            if first_visit:
                append(f"{head}{start_us},{plan.first_visit}{suffix}")
            for offset, body in plan.events:
                ts = start_us + offset
                if ts < next_midnight_us:
                    append(f"{head}{ts},{body}{suffix}")
                else:
                    carry_append(f"{next_head}{ts},{body}{suffix}")
            user.last_end_s = (start_us + plan.events[-1][0]) // US
        pool.extend(new_users)
        self.carry = [] if last_day else carry
        return lines


def parquet_schema() -> Any:
    """Arrow schema of the events (nested fields as structs and lists), for Parquet files."""
    import pyarrow as pa

    value = pa.struct(
        [
            ("string_value", pa.string()),
            ("int_value", pa.int64()),
            ("float_value", pa.float64()),
            ("double_value", pa.float64()),
        ]
    )
    return pa.schema(
        [
            ("event_date", pa.string()),
            ("event_timestamp", pa.int64()),
            ("event_name", pa.string()),
            ("event_params", pa.list_(pa.struct([("key", pa.string()), ("value", value)]))),
            (
                "ecommerce",
                pa.struct(
                    [
                        ("transaction_id", pa.string()),
                        ("purchase_revenue", pa.float64()),
                        ("purchase_revenue_in_usd", pa.float64()),
                        ("total_item_quantity", pa.int64()),
                    ]
                ),
            ),
            ("user_pseudo_id", pa.string()),
            ("user_id", pa.string()),
            ("user_first_touch_timestamp", pa.int64()),
            (
                "device",
                pa.struct(
                    [
                        ("category", pa.string()),
                        ("operating_system", pa.string()),
                        ("language", pa.string()),
                        (
                            "web_info",
                            pa.struct([("browser", pa.string()), ("hostname", pa.string())]),
                        ),
                    ]
                ),
            ),
            (
                "geo",
                pa.struct(
                    [("country", pa.string()), ("region", pa.string()), ("city", pa.string())]
                ),
            ),
            (
                "traffic_source",
                pa.struct(
                    [("name", pa.string()), ("medium", pa.string()), ("source", pa.string())]
                ),
            ),
            (
                "collected_traffic_source",
                pa.struct(
                    [
                        ("manual_source", pa.string()),
                        ("manual_medium", pa.string()),
                        ("manual_campaign_name", pa.string()),
                        ("gclid", pa.string()),
                    ]
                ),
            ),
            ("platform", pa.string()),
            ("stream_id", pa.string()),
        ]
    )
