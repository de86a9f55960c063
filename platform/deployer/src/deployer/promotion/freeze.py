"""The freeze calendar of an environment: whether automatic promotion into it is blocked, and until
when.

A calendar is a list of windows, written by people in the environment's configuration::

    windows:
      - name: year-end
        reason: change freeze for the holidays
        timezone: Europe/Berlin
        start: "2026-12-24T00:00"      # the first occurrence
        end: "2027-01-02T00:00"
        rrule: FREQ=YEARLY             # every year, Dec 24 to Jan 2
      - name: weekend
        timezone: Europe/Berlin
        start: "2026-01-02T18:00"      # a Friday
        duration: PT62H                # to Monday 08:00
        rrule: FREQ=WEEKLY;BYDAY=FR
      - name: datacenter-move
        reason: the database moves
        timezone: America/New_York
        start: "2026-06-13T09:00"      # once
        end: "2026-06-14T21:00"

Times are wall-clock times in the window's zone, and so are recurrences: "every Friday 18:00 to
Monday 08:00" is 18:00 and 08:00 local on both sides of a daylight-saving change. A window holds
over [start, end): frozen at its start, no longer at its end.

A local time stands for the first instant at which the zone's clocks read that time or later:

- a time skipped when clocks spring forward is the instant they jump (02:30 on 2026-03-29 in
  Europe/Berlin is 03:00 CEST, 01:00Z), so a window still covers the part of it that exists that
  day and never ends before it starts;
- a time that occurs twice when clocks fall back is its first occurrence (02:30 on 2026-10-25 in
  Europe/Berlin is 02:30 CEST, 00:30Z), fold=0 in zoneinfo's terms.

The recurrence rules and the local-time arithmetic are in :mod:`deployer.promotion.recurrence`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from deployer.promotion.recurrence import (
    RULE_ERRORS,
    RULE_EXAMPLES,
    Recurrence,
    instant_of,
    wall_clock,
)

HORIZON = timedelta(days=731)
"""How far ahead the calendar looks: for the next freeze, and for the end of a chain of windows."""

# A zone's clocks are at most a day off UTC's, so searches in local time are widened by this much
# and their finds then checked instant by instant.
_SLACK = timedelta(days=1)


@dataclass(frozen=True)
class Freeze:
    """A freeze of the environment, in effect or coming.

    ``started`` and ``until`` are aware UTC datetimes: the start of the window's occurrence, and
    the instant the freeze lifts, which is the occurrence's end carried on through every
    occurrence of any window of the calendar that overlaps or touches it. ``through`` names the
    other windows that carry it on past that end, in order, and ``timezone`` is the zone of the
    window whose end lifts it. ``open_ended`` says that it does not lift within ``HORIZON``;
    ``until`` is then as far as the search went.
    """

    window: str
    reason: str | None
    started: datetime
    until: datetime
    timezone: str
    through: tuple[str, ...] = ()
    open_ended: bool = False

    def describe(self) -> str:
        """One line for people, like ``frozen by year-end (change freeze for the holidays) until
        2027-01-02 00:00 Europe/Berlin (2027-01-01T23:00Z)``."""
        why = f" ({self.reason})" if self.reason else ""
        local = self.until.astimezone(ZoneInfo(self.timezone))
        when = f"{_clock(local, ' ')} {self.timezone} ({_clock(self.until, 'T')}Z)"
        if self.open_ended:
            text = f"frozen by {self.window}{why} with no end within {HORIZON.days} days: at least"
        else:
            text = f"frozen by {self.window}{why}"
        text += f" until {when}"
        if self.through:
            text += f", carried on by {', '.join(self.through)}"
        return text


class FreezeWindow(BaseModel):
    """A span of time in which promotion into the environment is frozen, once or recurring.

    ``start`` and ``end`` are local date-times in ``timezone`` (an IANA name), written without an
    offset, like ``2026-12-24T00:00``. Instead of ``end``, ``duration`` may give the length as an
    ISO 8601 duration (``PT62H``, ``P9D``) or a number of seconds; it is added on the local clock,
    just as ``end`` would be. ``rrule`` makes the window recur: an RFC 5545 rule such as
    ``FREQ=WEEKLY;BYDAY=FR`` (an ``RRULE:`` prefix is fine), whose first occurrence is ``start``
    and each of whose occurrences lasts ``end - start`` (or ``duration``) on the local clock. A
    rule recurs at most daily; its ``UNTIL`` is UTC when it ends in ``Z`` and local time
    otherwise, and a date alone means through that day.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, description="What the freeze is, e.g. year-end.")
    reason: str | None = Field(default=None, description="Why, shown to people.")
    timezone: str = Field(description="The IANA zone of start and end, e.g. Europe/Berlin.")
    start: datetime
    end: datetime | None = None
    duration: timedelta | None = None
    rrule: str | None = Field(default=None, description="An RFC 5545 rule, e.g. FREQ=DAILY.")

    _recurrence: Recurrence | None = PrivateAttr(default=None)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ValueError(
                f"unknown time zone {name!r}: give an IANA name such as Europe/Berlin"
            ) from None
        return name

    @field_validator("start", "end")
    @classmethod
    def _local_time(cls, value: datetime) -> datetime:
        if value.tzinfo is not None:
            raise ValueError(
                f"{value.isoformat()} has an offset: give the local time without one "
                "(like 2026-12-24T00:00) and its zone in timezone"
            )
        if value.microsecond:
            raise ValueError(f"{value.isoformat()}: give whole seconds")
        return value

    @field_validator("rrule")
    @classmethod
    def _rule_parses(cls, text: str, info: ValidationInfo) -> str:
        window = info.data.get("name", "?")
        start = info.data.get("start")
        zone = info.data.get("timezone")
        try:
            # Without a valid start and zone (their own errors say why), the syntax still counts.
            recurrence = Recurrence.parse(
                text, start or datetime(2000, 1, 1), ZoneInfo(zone or "UTC")
            )
        except RULE_ERRORS as exc:
            raise ValueError(
                f"window {window!r}: {text!r} is not an RFC 5545 recurrence rule this window can "
                f"use: {exc}; {RULE_EXAMPLES}"
            ) from None
        if start is not None and zone is not None:
            try:
                recurrence.check_start()
            except RULE_ERRORS as exc:
                raise ValueError(f"window {window!r}: rule {text!r}: {exc}") from None
        return text

    @model_validator(mode="after")
    def _length_and_recurrence(self) -> FreezeWindow:
        if (self.end is None) == (self.duration is None):
            raise ValueError(f"window {self.name!r}: give end or duration (one of them)")
        if self.end is not None and self.end <= self.start:
            raise ValueError(
                f"window {self.name!r}: end {self.end.isoformat()} is not after "
                f"start {self.start.isoformat()}"
            )
        if self.length <= timedelta(0):
            raise ValueError(f"window {self.name!r}: duration {self.duration} is not positive")
        if self.rrule is not None:
            self._recurrence = Recurrence.parse(self.rrule, self.start, self.zone)
        return self

    @property
    def zone(self) -> ZoneInfo:
        """The window's time zone."""
        return ZoneInfo(self.timezone)

    @property
    def length(self) -> timedelta:
        """How long each occurrence lasts on the local clock: ``end - start``, or ``duration``."""
        if self.end is not None:
            return self.end - self.start
        return self.duration or timedelta(0)

    def _in_effect(self, at: datetime) -> list[_Occurrence]:
        """The occurrences holding at the UTC instant ``at``: start <= at < end."""
        local = wall_clock(at, self.zone)
        starts = self._starts_from(local - self.length - _SLACK)
        found = (self._occurrence(start) for start in _until(starts, local + _SLACK))
        return [each for each in found if each is not None and each.start <= at < each.end]

    def _next_after(self, at: datetime, limit: datetime) -> _Occurrence | None:
        """The occurrence that starts first after the UTC instant ``at``, up to ``limit``."""
        best: _Occurrence | None = None
        last = wall_clock(limit, self.zone) + _SLACK
        for local in _until(self._starts_from(wall_clock(at, self.zone) - _SLACK), last):
            if best is not None and local > wall_clock(best.start, self.zone) + _SLACK:
                break
            found = self._occurrence(local)
            if found is None or not at < found.start <= limit:
                continue
            if best is None or found.start < best.start:
                best = found
        return best

    def _starts_from(self, local: datetime) -> Iterator[datetime]:
        """Local starts of the occurrences at or after the local time ``local``, in order."""
        if self._recurrence is not None:
            return self._recurrence.starts_from(local)
        return iter([self.start] if self.start >= local else [])

    def _occurrence(self, local: datetime) -> _Occurrence | None:
        """The occurrence starting at local time ``local``; None for one the clocks skip."""
        start = instant_of(local, self.zone)
        end = instant_of(local + self.length, self.zone)
        return _Occurrence(self, start, end) if start < end else None


class FreezeCalendar(BaseModel):
    """An environment's freeze windows, and when they freeze it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    windows: list[FreezeWindow] = Field(default_factory=list)

    @model_validator(mode="after")
    def _names_are_unique(self) -> FreezeCalendar:
        names = [window.name for window in self.windows]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"windows: give each name once; repeated: {', '.join(twice)}")
        return self

    def freeze_at(self, at: datetime) -> Freeze | None:
        """The freeze in effect at the aware datetime ``at``, or None when not frozen.

        ValueError for a naive ``at``: the calendar cannot tell which instant it means.
        """
        now = _utc(at)
        current = self._in_effect(now)
        if not current:
            return None
        return self._freeze(min(current, key=_earliest), current, now)

    def next_freeze_after(self, at: datetime) -> Freeze | None:
        """The freeze of the occurrence starting first after the aware datetime ``at`` (within
        ``HORIZON``), or None.

        To list upcoming freezes, ask again after the previous one's ``until``.
        """
        now = _utc(at)
        limit = now + HORIZON
        found = [each for w in self.windows if (each := w._next_after(now, limit)) is not None]
        if not found:
            return None
        first = min(found, key=_earliest)
        return self._freeze(first, self._in_effect(first.start), first.start)

    def _in_effect(self, at: datetime) -> list[_Occurrence]:
        return [each for window in self.windows for each in window._in_effect(at)]

    def _freeze(self, first: _Occurrence, current: list[_Occurrence], since: datetime) -> Freeze:
        """The freeze of ``first``, with ``current`` holding at ``since``: it lasts while one
        occurrence holds when another ends."""
        last = max(current, key=lambda each: each.end)
        carriers = [last]
        open_ended = False
        while more := self._in_effect(last.end):
            if last.end - since > HORIZON:
                open_ended = True
                break
            last = max(more, key=lambda each: each.end)
            carriers.append(last)
        through = dict.fromkeys(each.window.name for each in carriers if each.end > first.end)
        return Freeze(
            window=first.window.name,
            reason=first.window.reason,
            started=first.start,
            until=last.end,
            timezone=last.window.timezone,
            through=tuple(name for name in through if name != first.window.name),
            open_ended=open_ended,
        )


@dataclass(frozen=True)
class _Occurrence:
    """One occurrence of a window, [start, end) in aware UTC datetimes."""

    window: FreezeWindow
    start: datetime
    end: datetime


def _until(starts: Iterator[datetime], last: datetime) -> Iterator[datetime]:
    """``starts`` up to and including ``last``."""
    for start in starts:
        if start > last:
            return
        yield start


def _utc(at: datetime) -> datetime:
    """The aware ``at`` in UTC."""
    if at.utcoffset() is None:
        raise ValueError(
            f"{at.isoformat()} has no time zone: give an aware datetime, like datetime.now(UTC)"
        )
    return at.astimezone(UTC)


def _earliest(occurrence: _Occurrence) -> tuple[datetime, float]:
    """Orders occurrences by start, and of those starting together, the longest first."""
    return occurrence.start, -occurrence.end.timestamp()


def _clock(at: datetime, separator: str) -> str:
    """``at`` to the minute, or to the second when it has seconds."""
    return at.strftime(f"%Y-%m-%d{separator}%H:%M" + (":%S" if at.second else ""))
