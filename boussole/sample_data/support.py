"""Zendesk Support-shaped sample data: tickets walked through their statuses (replies,
pending customer answers, holds, reopens, satisfaction surveys, auto-close), with the
ticket metrics Zendesk derives from them. Requesters are CRM customer contacts (same
email) and organisations carry the CRM company domains."""

from __future__ import annotations

import bisect
import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from ._common import (
    DAY_S,
    ParisCalendar,
    bucket_by_day,
    cumulative,
    day_factor,
    days_between,
    dumps,
    iso_s,
    normalised,
    pick,
    poisson,
    slug,
)
from ._names import FREEMAIL_DOMAINS, person
from .crm import CompanyRef, Customer

if TYPE_CHECKING:  # generator imports this module
    from .generator import SampleScale

WARMUP_DAYS = 21  # open tickets at the first extract make a realistic backlog
SUBDOMAIN = "https://boussole-demo.zendesk.com/api/v2"
PRODUCT_FIELD_ID = 360_012_345_678
SUPPORT_WEEKDAY = normalised((1.25, 1.15, 1.1, 1.05, 0.95, 0.3, 0.2))
# Requests also arrive in the evening; agents answer in business hours.
REQUEST_HOURS = cumulative(
    (1, 0, 0, 0, 0, 1, 2, 5, 10, 11, 10, 9, 6, 7, 9, 9, 8, 7, 5, 4, 3, 3, 2, 1)
)

GROUPS = ("Support niveau 1", "Support technique", "Facturation")
CHANNELS = ("email", "web", "chat", "api")
CHANNEL_WEIGHTS = cumulative((0.45, 0.30, 0.20, 0.05))
PRIORITIES = ("low", "normal", "high", "urgent")
PRIORITY_WEIGHTS = cumulative((0.20, 0.55, 0.18, 0.07))
FIRST_REPLY_MEAN_MIN = {"low": 360, "normal": 180, "high": 70, "urgent": 25}
REPLY_COUNTS = (1, 2, 3, 4)
REPLY_WEIGHTS = {"chat": cumulative((0.8, 0.15, 0.05, 0.0))}
DEFAULT_REPLY_WEIGHTS = cumulative((0.52, 0.28, 0.13, 0.07))
# (subject, type, group index, product field value, tags)
TOPICS = (
    ("Impossible de me connecter", "incident", 0, "boussole_cloud", ["connexion"]),
    ("Question sur la facture", "question", 2, "facturation", ["facture"]),
    (
        "Le connecteur HubSpot ne synchronise plus",
        "problem",
        1,
        "boussole_cloud",
        ["connecteur_hubspot", "bug"],
    ),
    ("Export CSV incomplet", "incident", 1, "boussole_cloud", ["export"]),
    ("Demande de formation pour l'équipe", "task", 0, "formation", ["formation"]),
    ("Ajouter un utilisateur", "question", 0, "boussole_cloud", ["utilisateurs"]),
    (
        "Erreur lors de la mise à jour on-premise",
        "incident",
        1,
        "boussole_on_premise",
        ["installation"],
    ),
    ("Changement de moyen de paiement", "task", 2, "facturation", ["paiement"]),
    ("Tableau de bord lent", "problem", 1, "boussole_cloud", ["performance"]),
    ("Comment définir un objectif ?", "question", 0, "boussole_cloud", ["objectifs"]),
)
WAITING = {"agent": ("pending",), "requester": ("new", "open", "hold"), "on_hold": ("hold",)}


@dataclass
class SupportResult:
    files: dict[str, dict[date, list[str]]] = field(default_factory=dict)


class _Ids:
    def __init__(self, rng: random.Random, start: int, max_gap: int) -> None:
        self._rng, self._next, self._max_gap = rng, start, max_gap

    def __call__(self) -> int:
        self._next += self._rng.randint(1, self._max_gap)
        return self._next


def _minutes(cal: ParisCalendar, a: int, b: int) -> dict[str, int]:
    return {"calendar": (b - a) // 60, "business": cal.business_seconds(a, b) // 60}


_NO_MINUTES: dict[str, int | None] = {"calendar": None, "business": None}


class _Ticket:
    """One ticket's life; every change appends a ticket version and a metrics version."""

    def __init__(
        self,
        sim: _SupportSimulation,
        ticket_id: int,
        created: int,
        requester: int,
        organization_id: int | None,
    ) -> None:
        rng = sim.rng
        self.sim, self.id, self.created = sim, ticket_id, created
        self.requester, self.organization_id = requester, organization_id
        self.subject, self.type, self.group_index, self.product, self.tags = rng.choice(TOPICS)
        self.channel = pick(rng, CHANNELS, CHANNEL_WEIGHTS)
        if self.channel == "chat" and not sim.in_business_hours(created):
            self.channel = "web"  # chat offline: the widget leaves a form request
        self.priority = pick(rng, PRIORITIES, PRIORITY_WEIGHTS)
        self.metric_id = sim.metric_ids()
        self.status = "new"
        self.assignee: int | None = None
        self.group: int | None = None
        self.assigned_at: int | None = None
        self.transitions: list[tuple[int, str]] = [(created, "new")]
        self.replies = self.reopens = 0
        self.first_reply: int | None = None
        self.first_solved: int | None = None
        self.solved: int | None = None
        self.latest_comment = created
        self.rating: dict[str, Any] = {"score": "unoffered"}
        self.versions: list[tuple[int, str]] = []
        self.metric_versions: list[tuple[int, str]] = []

    def comment(self, ts: int, author: int, public: bool = True) -> None:
        self.latest_comment = ts
        body = "Bonjour, pouvez-vous m'aider ?" if author == self.requester else "Bonjour,"
        self.sim.comments.append(
            [
                (
                    ts,
                    dumps(
                        {
                            "id": self.sim.comment_ids(),
                            "ticket_id": self.id,
                            "type": "Comment",
                            "author_id": author,
                            "body": body,
                            "public": public,
                            "via": {"channel": self.channel},
                            "created_at": iso_s(ts),
                        }
                    ),
                )
            ]
        )

    def set_status(self, ts: int, status: str) -> None:
        self.status = status
        self.transitions.append((ts, status))
        if status == "solved":
            self.solved = ts
            self.first_solved = self.first_solved or ts
        elif status == "open" and self.solved is not None and self.transitions[-2][1] == "solved":
            self.reopens += 1
            self.solved = None
        self.snapshot(ts)

    def waited(self, kind: str, until: int) -> dict[str, int]:
        cal, calendar, business = self.sim.cal, 0, 0
        bounds = [*self.transitions[1:], (until, "")]
        for (ts, status), (next_ts, _) in zip(self.transitions, bounds, strict=True):
            end = min(next_ts, until)
            if status in WAITING[kind] and end > ts:
                calendar += end - ts
                business += cal.business_seconds(ts, end)
        return {"calendar": calendar // 60, "business": business // 60}

    def snapshot(self, ts: int) -> None:
        cal = self.sim.cal
        self.versions.append(
            (
                ts,
                dumps(
                    {
                        "url": f"{SUBDOMAIN}/tickets/{self.id}.json",
                        "id": self.id,
                        "external_id": None,
                        "via": {"channel": self.channel},
                        "created_at": iso_s(self.created),
                        "updated_at": iso_s(ts),
                        "generated_timestamp": ts,
                        "type": self.type,
                        "subject": self.subject,
                        "priority": self.priority,
                        "status": self.status,
                        "requester_id": self.requester,
                        "submitter_id": self.requester,
                        "assignee_id": self.assignee,
                        "organization_id": self.organization_id,
                        "group_id": self.group,
                        "collaborator_ids": [],
                        "has_incidents": False,
                        "is_public": True,
                        "tags": self.tags,
                        "custom_fields": [{"id": PRODUCT_FIELD_ID, "value": self.product}],
                        "satisfaction_rating": self.rating,
                        "brand_id": 360_000_111_222,
                    }
                ),
            )
        )
        solved_at = self.solved if self.status in ("solved", "closed") else None
        self.metric_versions.append(
            (
                ts,
                dumps(
                    {
                        "url": f"{SUBDOMAIN}/ticket_metrics/{self.metric_id}.json",
                        "id": self.metric_id,
                        "ticket_id": self.id,
                        "created_at": iso_s(self.created),
                        "updated_at": iso_s(ts),
                        "group_stations": 1 if self.group else 0,
                        "assignee_stations": 1 if self.assignee else 0,
                        "reopens": self.reopens,
                        "replies": self.replies,
                        "assignee_updated_at": iso_s(self.assigned_at)
                        if self.assigned_at
                        else None,
                        "requester_updated_at": iso_s(self.created),
                        "status_updated_at": iso_s(self.transitions[-1][0]),
                        "initially_assigned_at": iso_s(self.assigned_at)
                        if self.assigned_at
                        else None,
                        "assigned_at": iso_s(self.assigned_at) if self.assigned_at else None,
                        "solved_at": iso_s(solved_at) if solved_at else None,
                        "latest_comment_added_at": iso_s(self.latest_comment),
                        "reply_time_in_minutes": (
                            _minutes(cal, self.created, self.first_reply)
                            if self.first_reply
                            else _NO_MINUTES
                        ),
                        "first_resolution_time_in_minutes": (
                            _minutes(cal, self.created, self.first_solved)
                            if self.first_solved
                            else _NO_MINUTES
                        ),
                        "full_resolution_time_in_minutes": (
                            _minutes(cal, self.created, solved_at) if solved_at else _NO_MINUTES
                        ),
                        "agent_wait_time_in_minutes": self.waited("agent", ts),
                        "requester_wait_time_in_minutes": self.waited("requester", ts),
                        "on_hold_time_in_minutes": self.waited("on_hold", ts),
                    }
                ),
            )
        )

    def live(self) -> None:
        """Walk the ticket from creation to close (or to deletion)."""
        sim, rng, cal = self.sim, self.sim.rng, self.sim.cal
        t = self.created
        self.comment(t, self.requester)
        if rng.random() < 0.01:  # spam, deleted by an agent
            self.snapshot(t)
            self.set_status(cal.add_business_seconds(t, rng.randrange(600, 7200)), "deleted")
            return
        chat = self.channel == "chat"
        assignee = rng.choice(sim.agents_by_group[self.group_index] or sim.agents)
        if not chat:  # web and email requests wait in "new" until triage
            self.snapshot(t)
            t = cal.add_business_seconds(t, rng.randrange(60, 2700))
        self.assignee, self.group, self.assigned_at = assignee, sim.group_ids[self.group_index], t
        self.set_status(t, "open")
        n_replies = pick(rng, REPLY_COUNTS, REPLY_WEIGHTS.get(self.channel, DEFAULT_REPLY_WEIGHTS))
        for i in range(n_replies):
            if i == 0:
                mean_min = FIRST_REPLY_MEAN_MIN[self.priority]
            else:
                mean_min = 120
                if rng.random() < 0.06:  # waiting on a third party
                    t = cal.add_business_seconds(t, rng.randrange(300, 3600))
                    self.set_status(t, "hold")
                    mean_min = rng.randrange(240, 1200)
            if chat:
                t += rng.randrange(20, 300)
            else:
                t = cal.add_business_seconds(t, 120 + int(rng.expovariate(1 / (mean_min * 60))))
            if rng.random() < 0.12:
                self.comment(t - 60, self.assignee, public=False)  # internal note
            self.replies += 1
            self.first_reply = self.first_reply or t
            self.comment(t, self.assignee)
            if i == n_replies - 1:
                self.set_status(t, "solved")
                break
            self.set_status(t, "pending")
            if rng.random() < 0.07:  # the customer never answers: solved after a few days
                t = cal.add_business_seconds(t, 5 * 9 * 3600)
                self.set_status(t, "solved")
                break
            t += rng.randrange(60, 600) if chat else 300 + int(rng.expovariate(1 / 36000))
            self.comment(t, self.requester)
            self.set_status(t, "open")
        if rng.random() < 0.08:  # the fix did not hold: the customer reopens
            t += rng.randrange(DAY_S // 3, 3 * DAY_S)
            self.comment(t, self.requester)
            self.set_status(t, "open")
            t = cal.add_business_seconds(t, 120 + int(rng.expovariate(1 / 7200)))
            self.replies += 1
            self.comment(t, self.assignee)
            self.set_status(t, "solved")
        solved = t
        offered = solved + DAY_S
        self.rating = {"score": "offered"}
        rating_id = sim.rating_ids()
        rating_versions = [(offered, self._rating_doc(rating_id, offered, offered))]
        self.snapshot(offered)
        if rng.random() < 0.35:
            rated = offered + int(min(rng.expovariate(1 / 21600), 60 * 3600))
            slow = (solved - self.created) > 3 * DAY_S
            p_bad = 0.1 + 0.25 * (self.reopens > 0) + 0.1 * slow
            bad = rng.random() < p_bad
            self.rating = {
                "id": rating_id,
                "score": "bad" if bad else "good",
                "comment": "Réponse trop lente" if bad else "Merci, problème réglé",
            }
            rating_versions.append((rated, self._rating_doc(rating_id, offered, rated)))
            self.snapshot(rated)
        sim.ratings.append(rating_versions)
        self.set_status(solved + 4 * DAY_S, "closed")  # Zendesk closes solved tickets

    def _rating_doc(self, rating_id: int, created: int, updated: int) -> str:
        return dumps(
            {
                "url": f"{SUBDOMAIN}/satisfaction_ratings/{rating_id}.json",
                "id": rating_id,
                "ticket_id": self.id,
                "assignee_id": self.assignee,
                "group_id": self.group,
                "requester_id": self.requester,
                "score": self.rating["score"],
                "comment": self.rating.get("comment"),
                "created_at": iso_s(created),
                "updated_at": iso_s(updated),
            }
        )


class _SupportSimulation:
    def __init__(
        self,
        rng: random.Random,
        cal: ParisCalendar,
        scale: SampleScale,
        start: date,
        end: date,
        customers: list[Customer],
        companies: list[CompanyRef],
    ) -> None:
        self.rng, self.cal, self.scale, self.start, self.end = rng, cal, scale, start, end
        self.customers, self.customer_since = customers, [c.since_s for c in customers]
        self.metric_ids = _Ids(rng, 364_000_000_000, 5000)
        self.comment_ids = _Ids(rng, 371_000_000_000, 50_000)
        self.rating_ids = _Ids(rng, 366_000_000_000, 9000)
        self.user_ids = _Ids(rng, 380_000_000_000, 400_000)
        self.comments: list[list[tuple[int, str]]] = []
        self.ratings: list[list[tuple[int, str]]] = []
        self.users: list[list[tuple[int, str]]] = []
        self.user_by_email: dict[str, int] = {}
        long_ago = cal.midnight(start - timedelta(days=800))
        self.group_ids = [360_000_200_000 + 17 * i for i in range(len(GROUPS))]
        self.groups = [
            [
                (
                    long_ago,
                    dumps(
                        {
                            "id": gid,
                            "name": name,
                            "created_at": iso_s(long_ago),
                            "updated_at": iso_s(long_ago),
                        }
                    ),
                )
            ]
            for gid, name in zip(self.group_ids, GROUPS, strict=True)
        ]
        org_ids = _Ids(rng, 372_000_000_000, 90_000)
        self.org_by_company: dict[str, int] = {}
        self.organizations = []
        for company in companies:
            org_id = org_ids()
            self.org_by_company[company.id] = org_id
            self.organizations.append(
                [
                    (
                        company.created_s,
                        dumps(
                            {
                                "url": f"{SUBDOMAIN}/organizations/{org_id}.json",
                                "id": org_id,
                                "name": company.name,
                                "domain_names": [company.domain],
                                "created_at": iso_s(company.created_s),
                                "updated_at": iso_s(company.created_s),
                            }
                        ),
                    )
                ]
            )
        n_agents = max(3, round(scale.tickets_per_day * 0.75))
        self.agents: list[int] = []
        self.agents_by_group: list[list[int]] = [[] for _ in GROUPS]
        for i in range(n_agents + 1):
            first, last = person(rng)
            role = "admin" if i == n_agents else "agent"
            agent_id = self.add_user(
                long_ago,
                f"{first} {last}",
                f"{slug(first)}.{slug(last)}@boussole-demo.fr",
                role,
                None,
            )
            if role == "agent":
                self.agents.append(agent_id)
                self.agents_by_group[i % len(GROUPS)].append(agent_id)

    def in_business_hours(self, ts: int) -> bool:
        return self.cal.business_seconds(ts, ts + 60) == 60

    def add_user(self, ts: int, name: str, email: str, role: str, org: int | None) -> int:
        user_id = self.user_ids()
        self.user_by_email[email] = user_id
        self.users.append(
            [
                (
                    ts,
                    dumps(
                        {
                            "url": f"{SUBDOMAIN}/users/{user_id}.json",
                            "id": user_id,
                            "name": name,
                            "email": email,
                            "role": role,
                            "organization_id": org,
                            "time_zone": "Paris",
                            "iana_time_zone": "Europe/Paris",
                            "locale": "fr",
                            "active": True,
                            "created_at": iso_s(ts),
                            "updated_at": iso_s(ts),
                        }
                    ),
                )
            ]
        )
        return user_id

    def requester(self, created: int) -> tuple[int, int | None]:
        """A customer contact (same email as in the CRM) or an unknown visitor."""
        rng = self.rng
        eligible = bisect.bisect_right(self.customer_since, created)
        if eligible and rng.random() < 0.85:
            customer = self.customers[rng.randrange(eligible)]
            org = self.org_by_company.get(customer.company_id or "")
            name, email = customer.name, customer.email
        else:
            first, last = person(rng)
            org, name = None, f"{first} {last}"
            email = f"{slug(first)}.{slug(last)}.{rng.randrange(10, 9999)}@"
            email += rng.choice(FREEMAIL_DOMAINS)
        if email not in self.user_by_email:
            self.add_user(created - rng.randrange(5, 120), name, email, "end-user", org)
        return self.user_by_email[email], org

    def run(self) -> list[_Ticket]:
        tickets, next_id = [], 18_240
        end_s = self.cal.midnight(self.end + timedelta(days=1))
        for day in days_between(self.start - timedelta(days=WARMUP_DAYS), self.end):
            lam = self.scale.tickets_per_day * day_factor(day, self.start, SUPPORT_WEEKDAY)
            times = sorted(
                self.cal.random_time(self.rng, day, REQUEST_HOURS)
                for _ in range(poisson(self.rng, lam))
            )
            for created in times:
                if created >= end_s:
                    continue
                requester, org = self.requester(created)
                ticket = _Ticket(self, next_id, created, requester, org)
                next_id += 1
                ticket.live()
                tickets.append(ticket)
        return tickets


def simulate(
    rng: random.Random,
    cal: ParisCalendar,
    scale: SampleScale,
    start: date,
    end: date,
    customers: list[Customer],
    companies: list[CompanyRef],
) -> SupportResult:
    sim = _SupportSimulation(rng, cal, scale, start, end, customers, companies)
    tickets = sim.run()

    def spread(histories: list[list[tuple[int, str]]]) -> dict[date, list[str]]:
        return bucket_by_day(histories, cal, start, end)

    return SupportResult(
        {
            "tickets": spread([t.versions for t in tickets]),
            "ticket_metrics": spread([t.metric_versions for t in tickets]),
            "ticket_comments": spread(sim.comments),
            "satisfaction_ratings": spread(sim.ratings),
            "users": spread(sim.users),
            "groups": spread(sim.groups),
            "organizations": spread(sim.organizations),
        }
    )
