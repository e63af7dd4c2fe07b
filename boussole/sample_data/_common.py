"""Shared helpers: the Paris calendar, seasonality, random draws, timestamp formats, record
histories (incremental re-exports) and the landing writer."""

from __future__ import annotations

import bisect
import csv
import io
import json
import math
import random
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")
DAY_S = 86_400
DAY_MS = DAY_S * 1000

# Relative activity by weekday (Monday first) for B2B sources; normalised to a mean of 1 so
# that the SampleScale knobs stay daily averages.
_WEEKDAY_B2B = (1.12, 1.16, 1.14, 1.08, 0.98, 0.30, 0.22)
# Month of year: French B2B slows down in August and at year end.
_MONTH = (0.94, 1.0, 1.06, 1.02, 0.97, 1.0, 0.84, 0.62, 1.08, 1.06, 1.04, 0.86)
GROWTH_PER_YEAR = 0.25

# Support business schedule, Monday to Friday (local time).
BUSINESS_OPEN_H = 9
BUSINESS_CLOSE_H = 18

dumps: Callable[[Any], str] = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
# Escapes non-ASCII characters (\u00e9): the same JSON once parsed, and ASCII-only text
# encodes to UTF-8 as a plain copy, which matters for millions of web events.
dumps_ascii: Callable[[Any], str] = json.JSONEncoder(separators=(",", ":")).encode


def normalised(weights: Sequence[float]) -> tuple[float, ...]:
    mean = sum(weights) / len(weights)
    return tuple(w / mean for w in weights)


WEEKDAY_B2B = normalised(_WEEKDAY_B2B)


def day_factor(day: date, origin: date, weekday: Sequence[float] = WEEKDAY_B2B) -> float:
    """Seasonality x growth multiplier for a day (1.0 = the configured average at origin)."""
    growth = 1.0 + GROWTH_PER_YEAR * (day - origin).days / 365
    return weekday[day.weekday()] * _MONTH[day.month - 1] * growth


def cumulative(weights: Sequence[float]) -> list[float]:
    out, total = [], 0.0
    for w in weights:
        total += w
        out.append(total)
    return out


# Local hour profiles (Europe/Paris), as cumulative weights for bisect-based draws.
OFFICE_HOURS = cumulative(
    (0, 0, 0, 0, 0, 0, 0, 1, 4, 9, 10, 9, 5, 6, 9, 10, 9, 7, 4, 2, 1, 0, 0, 0)
)
WEB_HOURS = cumulative(
    (2, 1, 1, 1, 1, 2, 4, 7, 11, 13, 13, 12, 10, 11, 13, 13, 12, 11, 10, 10, 9, 8, 6, 4)
)


def pick(rng: random.Random, items: Sequence[Any], cum_weights: Sequence[float]) -> Any:
    """Weighted choice; faster than random.choices for one draw."""
    return items[bisect.bisect_right(cum_weights, rng.random() * cum_weights[-1])]


def poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 40:  # normal approximation: Knuth's loop is slow for large means
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def days_between(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def uuid_from(rng: random.Random) -> str:
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{h[16:20]}-{h[20:]}"


def slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(c if c.isalnum() else "-" for c in ascii_text.lower()).strip("-")


def iso_ms(ms: int) -> str:
    """HubSpot style: 2026-01-05T09:12:33.123Z."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def iso_s(s: int) -> str:
    """Zendesk style: 2026-01-05T09:12:33Z."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(s))


class ParisCalendar:
    """Epoch seconds <-> Europe/Paris dates, with precomputed midnights (DST-exact)."""

    def __init__(self, first: date, last: date) -> None:
        self.first = first
        self._midnights = [self._compute_midnight(d) for d in days_between(first, last)]

    @staticmethod
    def _compute_midnight(day: date) -> int:
        return int(datetime.combine(day, dtime(), PARIS).timestamp())

    def midnight(self, day: date) -> int:
        i = (day - self.first).days
        if 0 <= i < len(self._midnights):
            return self._midnights[i]
        return self._compute_midnight(day)

    def date_of(self, ts: int) -> date:
        i = bisect.bisect_right(self._midnights, ts) - 1
        if 0 <= i < len(self._midnights) - 1:
            return self.first + timedelta(days=i)
        return datetime.fromtimestamp(ts, PARIS).date()

    def random_time(self, rng: random.Random, day: date, cum_hours: Sequence[float]) -> int:
        """A moment of `day` following a local hour profile (epoch seconds)."""
        start = self.midnight(day)
        hour = bisect.bisect_right(cum_hours, rng.random() * cum_hours[-1])
        ts = start + hour * 3600 + rng.randrange(3600)
        return min(ts, self.midnight(day + timedelta(days=1)) - 1)  # 23-hour DST day

    def workday_moment(self, rng: random.Random, ts: int, days: float) -> int:
        """An office-hours moment about `days` calendar days after ts, counted in working days,
        so that work delayed over a weekend does not pile up on Mondays."""
        day = self.date_of(ts)
        remaining = int(days * 5 / 7 + rng.random())  # stochastic rounding
        while remaining > 0:
            day += timedelta(days=1)
            remaining -= day.weekday() < 5
        while day.weekday() >= 5:
            day += timedelta(days=1)
        moment = self.random_time(rng, day, OFFICE_HOURS)
        return moment if moment > ts else ts + 60 + rng.randrange(3600)

    def _business_window(self, day: date) -> tuple[int, int]:
        start = self.midnight(day)
        return start + BUSINESS_OPEN_H * 3600, start + BUSINESS_CLOSE_H * 3600

    def business_seconds(self, a: int, b: int) -> int:
        """Seconds of the support schedule (Mon-Fri, 9-18 Paris) between two moments."""
        total, day, last = 0, self.date_of(a), self.date_of(b)
        while day <= last:
            if day.weekday() < 5:
                lo, hi = self._business_window(day)
                total += max(0, min(b, hi) - max(a, lo))
            day += timedelta(days=1)
        return total

    def add_business_seconds(self, ts: int, seconds: int) -> int:
        """The moment `seconds` of business time after ts (agents reply in opening hours)."""
        day = self.date_of(ts)
        while True:
            if day.weekday() < 5:
                lo, hi = self._business_window(day)
                begin = max(ts, lo)
                if begin < hi:
                    if begin + seconds <= hi:
                        return begin + seconds
                    seconds -= hi - begin
            day += timedelta(days=1)


class RecordHistory:
    """One HubSpot-style record: a base document plus timed changes. Each change becomes a
    version, so that a later extract day re-exports the record with a newer updatedAt."""

    __slots__ = ("base", "changes")

    def __init__(self, base: dict[str, Any], created_ms: int) -> None:
        self.base = base
        self.changes: list[tuple[int, int, dict[str, Any], dict[str, Any]]] = [
            (created_ms, 0, {}, {})
        ]

    @property
    def created_ms(self) -> int:
        return self.changes[0][0]

    def change(self, ts_ms: int, props: dict[str, Any] | None = None, **top: Any) -> None:
        self.changes.append((ts_ms, len(self.changes), props or {}, top))

    def versions(self, stamp: Callable[[dict[str, Any], int], None]) -> list[tuple[int, str]]:
        # Changes replace top-level values or properties, never mutate nested values, so a
        # copy of these two levels is enough (deepcopy was the main cost).
        doc = dict(self.base)
        if "properties" in doc:
            doc["properties"] = dict(doc["properties"])
        out = []
        for ts, _, props, top in sorted(self.changes, key=lambda c: (c[0], c[1])):
            if props:
                doc["properties"].update(props)
            doc.update(top)
            stamp(doc, ts)
            out.append((ts, dumps(doc)))
        return out


def bucket_by_day(
    histories: Iterable[Sequence[tuple[int, str]]],
    cal: ParisCalendar,
    first: date,
    last: date,
    per_second: int = 1,
) -> dict[date, list[str]]:
    """Spread record versions over extract days (Paris date of the version's timestamp).

    The first extract is a full load (latest version of everything that existed by then);
    later extracts hold each record changed that day once, in its state at day end.
    Versions after `last` are not yet extracted. `per_second` converts timestamps (1000 = ms).
    """
    chosen: list[tuple[int, int, date, str]] = []
    for seq, versions in enumerate(histories):
        latest: dict[date, tuple[int, str]] = {}
        for ts, line in versions:
            day = max(cal.date_of(ts // per_second), first)
            if day <= last:
                latest[day] = (ts, line)
        chosen.extend((ts, seq, day, line) for day, (ts, line) in latest.items())
    chosen.sort(key=lambda c: (c[0], c[1]))
    by_day: dict[date, list[str]] = {}
    for _, _, day, line in chosen:
        by_day.setdefault(day, []).append(line)
    return by_day


_CHUNK_LINES = 2000


class LandingWriter:
    """Writes <landing>/<source>/<YYYY-MM-DD>/<object>.<ext> and keeps the tallies."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.files: set[Path] = set()
        self.rows: Counter[str] = Counter()

    def path(self, source: str, day: date, file_name: str) -> Path:
        return self.root / source / day.isoformat() / file_name

    def put(self, path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        self.files.add(path)

    def write_bytes(self, source: str, day: date, file_name: str, data: bytes) -> None:
        self.put(self.path(source, day, file_name), data)

    def remove(self, path: Path) -> None:
        path.unlink()
        self.files.discard(path)

    def write_lines(self, source: str, day: date, obj: str, lines: Sequence[str]) -> None:
        """JSONL; nothing is written for a day without records (no empty incremental file)."""
        if not lines:
            return
        path = self.path(source, day, f"{obj}.jsonl")
        path.parent.mkdir(parents=True, exist_ok=True)
        # Chunks: one huge join-encode-write of a day of web events is several times slower.
        with path.open("w", encoding="utf-8", newline="\n") as out:
            for i in range(0, len(lines), _CHUNK_LINES):
                out.write("\n".join(lines[i : i + _CHUNK_LINES]))
                out.write("\n")
        self.files.add(path)
        self.rows[f"{source}/{obj}"] += len(lines)

    def write_document(self, source: str, day: date, obj: str, doc: dict[str, Any]) -> None:
        text = json.dumps(doc, ensure_ascii=False, indent=2) + "\n"
        self.write_bytes(source, day, f"{obj}.json", text.encode())
        self.rows[f"{source}/{obj}"] += len(doc["results"])

    def write_csv(
        self, source: str, day: date, obj: str, header: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        if rows:
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator="\n")
            writer.writerow(header)
            writer.writerows(rows)
            self.write_bytes(source, day, f"{obj}.csv", buffer.getvalue().encode())
            self.rows[f"{source}/{obj}"] += len(rows)
