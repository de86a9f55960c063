"""The machinery of the freeze calendar (:mod:`deployer.promotion.freeze`): RFC 5545 recurrence
rules on a zone's wall clock, and the instant a wall-clock time stands for.

A rule recurs on the local clock of its window's zone, so "every Friday 18:00" is 18:00 local on
both sides of a daylight-saving change. A local time stands for the first instant at which the
zone's clocks read that time or later (the freeze module says what that means for a window when
clocks spring forward or fall back).
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import dateutil.rrule
from dateutil.relativedelta import relativedelta

RULE_EXAMPLES = "for example FREQ=WEEKLY;BYDAY=FR or FREQ=YEARLY;BYMONTH=12;BYMONTHDAY=24"
"""Rules to show people whose rule was refused."""
RULE_ERRORS = (ValueError, TypeError, KeyError, IndexError, OverflowError)
"""What parsing a rule raises when it is none this calendar can use (dateutil's included)."""

_FREQUENCIES = ("YEARLY", "MONTHLY", "WEEKLY", "DAILY")
_WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
# Without any of these, RFC 5545 takes the day of the occurrences from DTSTART.
_DAY_PARTS = ("BYWEEKNO", "BYYEARDAY", "BYMONTHDAY", "BYDAY", "BYEASTER")
_UNTIL = re.compile(r"(\d{8})(?:T(\d{6})(Z?))?")


@dataclass(frozen=True)
class Recurrence:
    """A window's rule, with all that RFC 5545 would take from DTSTART written out in ``rule``.

    So written, the rule gives the same occurrences from any DTSTART a whole number of intervals
    after the first, and a search near an instant restarts it close before that instant instead
    of walking every occurrence since the first (dateutil's searches walk from DTSTART). For the
    same reason a COUNT becomes the UNTIL of its last occurrence.
    """

    rule: str
    start: datetime
    frequency: str
    interval: int

    @classmethod
    def parse(cls, text: str, start: datetime, zone: ZoneInfo) -> Recurrence:
        """The recurrence of ``text`` from the local ``start`` in ``zone``; ValueError says why
        it is none."""
        parts = _rule_parts(text)
        frequency = parts.get("FREQ")
        if frequency is None:
            raise ValueError("FREQ is missing")
        if frequency not in _FREQUENCIES:
            raise ValueError(f"FREQ={frequency} is none of {', '.join(_FREQUENCIES)}")
        interval = parts.get("INTERVAL", "1")
        if not interval.isdigit() or int(interval) < 1:
            raise ValueError(f"INTERVAL={interval} is not a whole number of 1 or more")
        if "COUNT" in parts and "UNTIL" in parts:
            raise ValueError("COUNT and UNTIL both end it; give one")
        if "UNTIL" in parts:
            parts["UNTIL"] = _local_until(parts["UNTIL"], zone)
        explicit = _explicit(parts, start)
        # Parsing refuses what dateutil cannot read.
        parsed = dateutil.rrule.rrulestr(_joined(explicit), dtstart=start)
        if "COUNT" in parts:
            last = deque(parsed, maxlen=1)
            if not last:
                raise ValueError(f"COUNT={parts['COUNT']} leaves no occurrence")
            del explicit["COUNT"]
            explicit["UNTIL"] = last[0].strftime("%Y%m%dT%H%M%S")
        return cls(_joined(explicit), start, frequency, int(interval))

    def check_start(self) -> None:
        """ValueError unless ``start`` is the first occurrence (RFC 5545 leaves a recurrence
        undefined when DTSTART is not one of its own)."""
        first = next(iter(self.restarted(self.start)), None)
        if first is None:
            raise ValueError(f"it has no occurrence from start {self.start.isoformat()} on")
        if first != self.start:
            raise ValueError(
                f"start {self.start.isoformat()} is not one of its occurrences "
                f"(the first after it is {first.isoformat()}); make start the first"
            )

    def starts_from(self, local: datetime) -> Iterator[datetime]:
        """The occurrences at or after the local time ``local``, in order."""
        return self.restarted(local).xafter(local, inc=True)

    def restarted(self, near: datetime) -> dateutil.rrule.rrulebase:
        """The rule from a DTSTART a whole period or more before ``near`` (or from the first)."""
        start = self.start
        if near > start:
            if self.frequency in ("YEARLY", "MONTHLY"):
                months = (near.year - start.year) * 12 + near.month - start.month
                if self.frequency == "YEARLY":
                    start += relativedelta(years=self._whole_intervals(months // 12))
                else:
                    start += relativedelta(months=self._whole_intervals(months))
            else:
                days = (near - start).days
                if self.frequency == "WEEKLY":
                    start += timedelta(weeks=self._whole_intervals(days // 7))
                else:
                    start += timedelta(days=self._whole_intervals(days))
        return dateutil.rrule.rrulestr(self.rule, dtstart=start)

    def _whole_intervals(self, periods: int) -> int:
        """Periods to step ahead: whole intervals in ``periods``, less one to stay before it."""
        return max(0, periods // self.interval - 1) * self.interval


def _rule_parts(text: str) -> dict[str, str]:
    """NAME -> VALUE of an RRULE's text, names and values upper case."""
    body = text.strip().upper().removeprefix("RRULE:")
    if ":" in body:
        raise ValueError("give the rule alone (its DTSTART is start)")
    parts: dict[str, str] = {}
    for pair in body.split(";"):
        if not pair.strip():
            continue
        name, equals, value = (each.strip() for each in pair.partition("="))
        if not equals or not name or not value:
            raise ValueError(f"{pair.strip()!r} is not NAME=VALUE")
        if name in parts:
            raise ValueError(f"{name} is given twice")
        parts[name] = value
    if not parts:
        raise ValueError("it is empty")
    return parts


def _joined(parts: dict[str, str]) -> str:
    """An RRULE's text from its parts."""
    return ";".join(f"{name}={value}" for name, value in parts.items())


def _explicit(parts: dict[str, str], start: datetime) -> dict[str, str]:
    """``parts`` with the values RFC 5545 takes from DTSTART when they are missing."""
    explicit = dict(parts)
    if not any(name in parts for name in _DAY_PARTS):
        if parts["FREQ"] == "YEARLY":
            explicit.setdefault("BYMONTH", str(start.month))
            explicit["BYMONTHDAY"] = str(start.day)
        elif parts["FREQ"] == "MONTHLY":
            explicit["BYMONTHDAY"] = str(start.day)
        elif parts["FREQ"] == "WEEKLY":
            explicit["BYDAY"] = _WEEKDAYS[start.weekday()]
    explicit.setdefault("BYHOUR", str(start.hour))
    explicit.setdefault("BYMINUTE", str(start.minute))
    explicit.setdefault("BYSECOND", str(start.second))
    explicit.setdefault("WKST", "MO")
    return explicit


def _local_until(value: str, zone: ZoneInfo) -> str:
    """An RRULE's UNTIL in local time: UTC (…Z) converted, a date alone through its last second."""
    match = _UNTIL.fullmatch(value)
    if match is None:
        raise ValueError(
            f"UNTIL={value} is not like 20271231T235959Z (UTC) or 20271231T235959 (local time)"
        )
    day, time, utc = match.groups()
    if time is None:
        return f"{day}T235959"
    if not utc:
        return value
    instant = datetime.strptime(day + time, "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    return wall_clock(instant, zone).strftime("%Y%m%dT%H%M%S")


def instant_of(local: datetime, zone: ZoneInfo) -> datetime:
    """The first instant (aware UTC) at which clocks in ``zone`` read ``local`` or later."""
    instant = local.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if wall_clock(instant, zone) == local:
        return instant
    # The clocks skip ``local``: fold=1 places it before their jump and fold=0 after it, so the
    # jump lies between; find it to the second.
    before = int(local.replace(tzinfo=zone, fold=1).timestamp())
    after = int(instant.timestamp())
    while after - before > 1:
        middle = (before + after) // 2
        if wall_clock(datetime.fromtimestamp(middle, UTC), zone) >= local:
            after = middle
        else:
            before = middle
    return datetime.fromtimestamp(after, UTC)


def wall_clock(instant: datetime, zone: ZoneInfo) -> datetime:
    """What clocks in ``zone`` read at ``instant`` (naive)."""
    return instant.astimezone(zone).replace(tzinfo=None)
