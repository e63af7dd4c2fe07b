"""Spend CSVs: ad platform costs per day and campaign (with occasional restatements of the
previous day, as ad platforms do), sales team costs per month, and daily FX rates."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import date, timedelta

from ._common import ParisCalendar, day_factor, days_between, normalised
from ._marketing import CAMPAIGNS
from .crm import WonDeal

FX_START = {"USD": 0.925, "GBP": 1.165}  # EUR per unit
ADS_WEEKDAY = normalised((1.05, 1.08, 1.07, 1.05, 1.0, 0.7, 0.65))
MONTHLY_COST_PER_SELLER = 6500.0  # loaded salary, EUR
TEAM_TOOLS_PER_MONTH = 800.0
COMMISSION_RATE = 0.07
TEAM_CURRENCY = {"Ventes International": "GBP"}  # paid by the London office

MARKETING_HEADER = ("date", "channel", "campaign", "spend", "currency")
SALES_COSTS_HEADER = ("month", "team", "cost", "currency")
FX_HEADER = ("date", "currency", "rate_to_reporting")


@dataclass
class SpendResult:
    marketing_spend: dict[date, list[tuple[str, ...]]] = field(default_factory=dict)
    sales_costs: dict[date, list[tuple[str, ...]]] = field(default_factory=dict)
    fx_rates: dict[date, list[tuple[str, ...]]] = field(default_factory=dict)


def simulate_fx(rng: random.Random, first: date, last: date) -> dict[date, dict[str, float]]:
    """EUR per unit of each currency, a small daily random walk."""
    rates, out = dict(FX_START), {}
    for day in days_between(first, last):
        for currency in rates:
            rates[currency] *= math.exp(rng.gauss(0.0, 0.004))
        out[day] = {"EUR": 1.0, **{c: round(r, 6) for c, r in rates.items()}}
    return out


def _month(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def _previous_month(day: date) -> date:
    return (day.replace(day=1) - timedelta(days=1)).replace(day=1)


def _sales_costs(
    day: date,
    fx: dict[date, dict[str, float]],
    won: list[WonDeal],
    headcount: dict[str, int],
    cal: ParisCalendar,
) -> list[tuple[str, ...]]:
    """Previous month at its final cost (with commissions) and current month's forecast."""
    commission: dict[tuple[str, str], float] = {}
    for deal in won:
        close_day = cal.date_of(deal.close_s)
        rate = fx.get(close_day, fx[min(fx)])[deal.currency]
        key = (_month(close_day), deal.team)
        commission[key] = commission.get(key, 0.0) + deal.amount * rate * COMMISSION_RATE
    rows = []
    for month_start, final in ((_previous_month(day), True), (day.replace(day=1), False)):
        month = _month(month_start)
        for team in sorted(headcount):
            cost_eur = headcount[team] * MONTHLY_COST_PER_SELLER + TEAM_TOOLS_PER_MONTH
            if final:
                cost_eur += commission.get((month, team), 0.0)
            currency = TEAM_CURRENCY.get(team, "EUR")
            rate = fx.get(month_start, fx[min(fx)])[currency]
            rows.append((month, team, f"{cost_eur / rate:.2f}", currency))
    return rows


def simulate(
    rng: random.Random,
    cal: ParisCalendar,
    start: date,
    end: date,
    fx: dict[date, dict[str, float]],
    won: list[WonDeal],
    headcount: dict[str, int],
) -> SpendResult:
    result = SpendResult()
    previous: list[tuple[str, ...]] = []
    for day in days_between(start, end):
        factor = day_factor(day, start, ADS_WEEKDAY)
        rows = [
            (
                day.isoformat(),
                c.channel,
                c.name,
                f"{c.daily_budget * factor * rng.uniform(0.8, 1.2) / fx[day][c.currency]:.2f}",
                c.currency,
            )
            for c in CAMPAIGNS
        ]
        restatements = []
        if previous and rng.random() < 0.15:  # late conversion data: yesterday restated
            old = rng.choice(previous)
            restated = float(old[3]) * rng.uniform(0.97, 1.03)
            restatements.append((*old[:3], f"{restated:.2f}", old[4]))
        result.marketing_spend[day] = rows + restatements
        previous = rows
        if day == start or day.day == 1:
            result.sales_costs[day] = _sales_costs(day, fx, won, headcount, cal)
        fx_days = [d for d in fx if d <= day] if day == start else [day]
        result.fx_rates[day] = [
            (d.isoformat(), currency, f"{rate:.6f}")
            for d in fx_days
            for currency, rate in fx[d].items()
        ]
    return result
