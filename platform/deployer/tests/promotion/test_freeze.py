"""The freeze calendar: whether an environment is frozen at an instant and until when, on local
wall-clock time across daylight-saving changes; and what a calendar's configuration refuses.

The expected instants are worked out by hand from the zones' rules: Europe/Berlin springs forward
on 2026-03-29 at 02:00 CET (01:00Z) and falls back on 2026-10-25 at 03:00 CEST (01:00Z);
America/New_York springs forward on 2026-03-08 at 02:00 EST (07:00Z) and falls back on 2026-11-01
at 02:00 EDT (06:00Z).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml
from dateutil.rrule import rrulestr
from pydantic import ValidationError

from deployer.promotion.freeze import HORIZON, Freeze, FreezeCalendar


def calendar(*windows: dict[str, Any]) -> FreezeCalendar:
    """A calendar of ``windows`` as people write them."""
    return FreezeCalendar.model_validate({"windows": list(windows)})


def utc(text: str) -> datetime:
    """The UTC instant of ``text`` (an ISO date-time without offset)."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def weekend(zone: str, **more: Any) -> dict[str, Any]:
    """Every Friday 18:00 to Monday 08:00 local time, from Friday 2026-01-02."""
    return {
        "name": "weekend",
        "timezone": zone,
        "start": "2026-01-02T18:00",
        "end": "2026-01-05T08:00",
        "rrule": "FREQ=WEEKLY;BYDAY=FR",
        **more,
    }


YEAR_END = {
    "name": "year-end",
    "reason": "change freeze for the holidays",
    "timezone": "Europe/Berlin",
    "start": "2026-12-24T00:00",
    "end": "2027-01-02T00:00",
    "rrule": "RRULE:FREQ=YEARLY",
}

MOVE = {
    "name": "datacenter-move",
    "reason": "the database moves",
    "timezone": "America/New_York",
    "start": "2026-06-13T09:00",
    "end": "2026-06-14T21:00",
}


YEARS_LATER = (datetime(2027, 1, 1), datetime(2030, 12, 31, 23, 59, 59))


def frozen(freezes: FreezeCalendar, at: datetime) -> Freeze:
    """The freeze at ``at``, which the test expects."""
    freeze = freezes.freeze_at(at)
    assert freeze is not None, f"not frozen at {at}"
    return freeze


def test_a_one_off_window_holds_from_its_start_up_to_its_end() -> None:
    freezes = calendar(MOVE)
    start, end = utc("2026-06-13T13:00"), utc("2026-06-15T01:00")  # EDT is UTC-4
    assert freezes.freeze_at(start - timedelta(seconds=1)) is None
    assert frozen(freezes, start) == Freeze(
        window="datacenter-move",
        reason="the database moves",
        started=start,
        until=end,
        timezone="America/New_York",
    )
    assert frozen(freezes, utc("2026-06-14T12:00")).until == end
    assert frozen(freezes, end - timedelta(seconds=1)).until == end
    assert freezes.freeze_at(end) is None
    assert freezes.freeze_at(utc("2027-06-14T12:00")) is None


def test_the_freeze_describes_itself_in_local_time_and_utc() -> None:
    freeze = frozen(calendar(YEAR_END), utc("2026-12-27T12:00"))
    assert freeze.describe() == (
        "frozen by year-end (change freeze for the holidays) "
        "until 2027-01-02 00:00 Europe/Berlin (2027-01-01T23:00Z)"
    )
    move = frozen(calendar(MOVE), utc("2026-06-14T00:00"))
    assert move.describe() == (
        "frozen by datacenter-move (the database moves) "
        "until 2026-06-14 21:00 America/New_York (2026-06-15T01:00Z)"
    )


def test_an_instant_in_any_zone_is_the_same_instant() -> None:
    freezes = calendar(MOVE)
    berlin = datetime.fromisoformat("2026-06-13T15:00+02:00")  # 13:00Z, the start
    assert frozen(freezes, berlin).started == utc("2026-06-13T13:00")
    assert frozen(freezes, berlin).started.tzinfo is UTC


def test_a_naive_instant_is_refused() -> None:
    with pytest.raises(ValueError, match="has no time zone"):
        calendar(MOVE).freeze_at(datetime(2026, 6, 14, 12))
    with pytest.raises(ValueError, match="has no time zone"):
        calendar(MOVE).next_freeze_after(datetime(2026, 6, 14, 12))


def test_an_empty_calendar_never_freezes() -> None:
    assert FreezeCalendar().freeze_at(utc("2026-06-14T12:00")) is None
    assert FreezeCalendar().next_freeze_after(utc("2026-06-14T12:00")) is None


@pytest.mark.parametrize(
    ("zone", "starts", "lifts"),
    [
        # Berlin, spring: the weekend before is all CET, the one across the change starts in CET
        # and lifts in CEST (61 hours), the one after is all CEST.
        ("Europe/Berlin", "2026-03-20T17:00", "2026-03-23T07:00"),
        ("Europe/Berlin", "2026-03-27T17:00", "2026-03-30T06:00"),
        ("Europe/Berlin", "2026-04-03T16:00", "2026-04-06T06:00"),
        # Berlin, autumn: starts in CEST and lifts in CET (63 hours).
        ("Europe/Berlin", "2026-10-16T16:00", "2026-10-19T06:00"),
        ("Europe/Berlin", "2026-10-23T16:00", "2026-10-26T07:00"),
        ("Europe/Berlin", "2026-10-30T17:00", "2026-11-02T07:00"),
        # New York, spring and autumn.
        ("America/New_York", "2026-02-27T23:00", "2026-03-02T13:00"),
        ("America/New_York", "2026-03-06T23:00", "2026-03-09T12:00"),
        ("America/New_York", "2026-03-13T22:00", "2026-03-16T12:00"),
        ("America/New_York", "2026-10-23T22:00", "2026-10-26T12:00"),
        ("America/New_York", "2026-10-30T22:00", "2026-11-02T13:00"),
        ("America/New_York", "2026-11-06T23:00", "2026-11-09T13:00"),
    ],
)
def test_a_weekly_window_keeps_local_time_across_daylight_saving_changes(
    zone: str, starts: str, lifts: str
) -> None:
    freezes = calendar(weekend(zone))
    start, end = utc(starts), utc(lifts)
    assert freezes.freeze_at(start - timedelta(seconds=1)) is None
    for at in (start, start + (end - start) / 2, end - timedelta(seconds=1)):
        freeze = frozen(freezes, at)
        assert (freeze.started, freeze.until) == (start, end)
    assert freezes.freeze_at(end) is None
    upcoming = freezes.next_freeze_after(start - timedelta(days=3))
    assert upcoming is not None
    assert (upcoming.started, upcoming.until) == (start, end)


def test_duration_is_added_on_the_local_clock_like_end() -> None:
    at = utc("2026-03-28T12:00")
    by_end = frozen(calendar(weekend("Europe/Berlin")), at)
    for duration in ("PT62H", "P2DT14H", 62 * 3600):
        window = weekend("Europe/Berlin", duration=duration)
        del window["end"]
        assert frozen(calendar(window), at) == by_end
    assert by_end.until == utc("2026-03-30T06:00")


def test_a_yearly_window_spans_the_turn_of_the_year() -> None:
    freezes = calendar(YEAR_END)
    start, end = utc("2027-12-23T23:00"), utc("2028-01-01T23:00")
    assert freezes.freeze_at(start - timedelta(seconds=1)) is None
    assert (frozen(freezes, start).started, frozen(freezes, start).until) == (start, end)
    freeze = frozen(freezes, utc("2028-01-01T12:00"))
    assert (freeze.started, freeze.until) == (start, end)
    assert freezes.freeze_at(end) is None
    # Years on, the answer is found near the instant asked about.
    assert frozen(freezes, utc("2046-12-31T00:00")).until == utc("2047-01-01T23:00")


def test_a_weekend_touching_a_holiday_freeze_lifts_with_the_holiday() -> None:
    christmas = {
        "name": "christmas-week",
        "timezone": "Europe/Berlin",
        "start": "2026-12-21T08:00",  # Monday, when the weekend ends
        "end": "2026-12-23T00:00",
    }
    freezes = calendar(weekend("Europe/Berlin"), christmas)
    freeze = frozen(freezes, utc("2026-12-19T12:00"))
    assert freeze.window == "weekend"
    assert freeze.started == utc("2026-12-18T17:00")
    assert freeze.until == utc("2026-12-22T23:00")
    assert freeze.through == ("christmas-week",)
    assert freeze.describe() == (
        "frozen by weekend until 2026-12-23 00:00 Europe/Berlin (2026-12-22T23:00Z), "
        "carried on by christmas-week"
    )
    inside = frozen(freezes, utc("2026-12-22T12:00"))
    assert (inside.window, inside.through, inside.until) == ("christmas-week", (), freeze.until)


def test_a_chain_runs_through_overlaps_and_other_zones_to_its_last_end() -> None:
    # year-end (to Sat 2027-01-02 00:00) overlaps the weekend from Fri 2027-01-01 18:00, and a
    # New York window overlapping that weekend lifts last.
    new_york = {
        "name": "new-york-cutover",
        "timezone": "America/New_York",
        "start": "2027-01-03T12:00",
        "end": "2027-01-04T12:00",
    }
    freezes = calendar(YEAR_END, weekend("Europe/Berlin"), new_york)
    freeze = frozen(freezes, utc("2026-12-30T12:00"))
    assert freeze.window == "year-end"
    assert freeze.until == utc("2027-01-04T17:00")
    assert freeze.through == ("weekend", "new-york-cutover")
    assert freeze.timezone == "America/New_York"


def test_windows_a_second_apart_do_not_chain() -> None:
    later = {**MOVE, "name": "later", "start": "2026-06-14T21:00:01", "end": "2026-06-15T00:00"}
    freeze = frozen(calendar(MOVE, later), utc("2026-06-14T12:00"))
    assert (freeze.until, freeze.through) == (utc("2026-06-15T01:00"), ())


def test_of_windows_in_effect_together_the_earliest_started_names_the_freeze() -> None:
    freeze = frozen(calendar(MOVE, weekend("Europe/Berlin")), utc("2026-06-14T00:00"))
    # The weekend started on Friday 16:00Z; the move on Saturday and it lifts before the weekend.
    assert (freeze.window, freeze.started) == ("weekend", utc("2026-06-12T16:00"))
    assert (freeze.until, freeze.through) == (utc("2026-06-15T06:00"), ())


def test_a_freeze_with_no_end_in_sight_says_so() -> None:
    always = {
        "name": "always",
        "timezone": "UTC",
        "start": "2026-01-01T00:00",
        "duration": "P1D",
        "rrule": "FREQ=DAILY",
    }
    freeze = frozen(calendar(always), utc("2026-06-01T12:00"))
    assert freeze.open_ended
    assert freeze.until > utc("2026-06-01T12:00") + HORIZON
    assert "with no end within 731 days: at least until" in freeze.describe()


def test_a_local_time_skipped_by_spring_forward_is_the_instant_clocks_jump() -> None:
    # 02:30-03:30 every day; on 2026-03-29 Berlin's clocks jump from 02:00 to 03:00 CEST (01:00Z)
    # so that day's window holds from the jump to 03:30 CEST.
    night = {
        "name": "night",
        "timezone": "Europe/Berlin",
        "start": "2026-03-01T02:30",
        "end": "2026-03-01T03:30",
        "rrule": "FREQ=DAILY",
    }
    freezes = calendar(night)
    day_before = frozen(freezes, utc("2026-03-28T01:30"))
    assert day_before.until == utc("2026-03-28T02:30")
    assert freezes.freeze_at(utc("2026-03-29T00:59:59")) is None
    jump = frozen(freezes, utc("2026-03-29T01:00"))
    assert (jump.started, jump.until) == (utc("2026-03-29T01:00"), utc("2026-03-29T01:30"))
    day_after = frozen(freezes, utc("2026-03-30T00:30"))
    assert (day_after.started, day_after.until) == (
        utc("2026-03-30T00:30"),
        utc("2026-03-30T01:30"),
    )


def test_a_window_wholly_skipped_by_spring_forward_does_not_hold_that_day() -> None:
    skipped = {
        "name": "skipped",
        "timezone": "Europe/Berlin",
        "start": "2026-03-28T02:10",
        "end": "2026-03-28T02:50",
        "rrule": "FREQ=DAILY",
    }
    freezes = calendar(skipped)
    assert freezes.freeze_at(utc("2026-03-29T01:00")) is None
    upcoming = freezes.next_freeze_after(utc("2026-03-28T02:00"))
    assert upcoming is not None
    assert upcoming.started == utc("2026-03-30T00:10")  # 02:10 CEST


def test_an_end_skipped_by_spring_forward_lifts_when_clocks_jump() -> None:
    once = {
        "name": "once",
        "timezone": "America/New_York",
        "start": "2026-03-07T22:00",
        "end": "2026-03-08T02:30",  # does not exist: 02:00 EST jumps to 03:00 EDT (07:00Z)
    }
    assert frozen(calendar(once), utc("2026-03-08T06:00")).until == utc("2026-03-08T07:00")


def test_a_local_time_repeated_by_fall_back_is_its_first_occurrence() -> None:
    # 02:30 occurs twice on 2026-10-25 in Berlin: 02:30 CEST (00:30Z), then 02:30 CET (01:30Z).
    night = {
        "name": "night",
        "timezone": "Europe/Berlin",
        "start": "2026-10-01T02:30",
        "end": "2026-10-01T03:30",
        "rrule": "FREQ=DAILY",
    }
    freezes = calendar(night)
    assert freezes.freeze_at(utc("2026-10-25T00:29:59")) is None
    freeze = frozen(freezes, utc("2026-10-25T00:30"))
    # 03:30 CET: on that day the window holds two hours.
    assert (freeze.started, freeze.until) == (utc("2026-10-25T00:30"), utc("2026-10-25T02:30"))
    once = {**night, "name": "once", "start": "2026-10-25T00:00", "end": "2026-10-25T02:30"}
    del once["rrule"]
    assert frozen(calendar(once), utc("2026-10-25T00:00")).until == utc("2026-10-25T00:30")


def test_the_next_freeze_is_the_first_occurrence_starting_after_the_instant() -> None:
    freezes = calendar(YEAR_END, weekend("Europe/Berlin"), MOVE)
    upcoming = freezes.next_freeze_after(utc("2026-06-10T00:00"))
    assert upcoming is not None
    assert (upcoming.window, upcoming.started) == ("weekend", utc("2026-06-12T16:00"))
    # At a start exactly, the next is a later one.
    after = freezes.next_freeze_after(upcoming.started)
    assert after is not None
    assert (after.window, after.started) == ("datacenter-move", utc("2026-06-13T13:00"))
    # It starts within the weekend, which holds on after it.
    assert (after.until, after.through) == (utc("2026-06-15T06:00"), ("weekend",))
    later = freezes.next_freeze_after(after.until)
    assert later is not None
    assert (later.window, later.started) == ("weekend", utc("2026-06-19T16:00"))


def test_the_next_freeze_is_looked_for_two_years_ahead() -> None:
    freezes = calendar(MOVE)
    assert freezes.next_freeze_after(utc("2026-06-13T13:00")) is None  # started, not after
    far = {**MOVE, "start": "2030-06-13T09:00", "end": "2030-06-14T21:00"}
    assert calendar(far).next_freeze_after(utc("2026-01-01T00:00")) is None
    assert calendar(far).next_freeze_after(utc("2029-01-01T00:00")) is not None


def test_upcoming_freezes_carry_on_like_current_ones() -> None:
    freezes = calendar(YEAR_END, weekend("Europe/Berlin"))
    upcoming = freezes.next_freeze_after(utc("2026-12-22T00:00"))
    assert upcoming is not None
    assert (upcoming.window, upcoming.started) == ("year-end", utc("2026-12-23T23:00"))
    assert (upcoming.until, upcoming.through) == (utc("2027-01-04T07:00"), ("weekend",))


@pytest.mark.parametrize(
    ("rule", "first"),
    [
        # What the rule leaves out comes from its first occurrence: weekday, day, month, time.
        ("FREQ=WEEKLY;INTERVAL=2", "2016-01-01T06:00"),
        ("FREQ=MONTHLY", "2016-01-31T06:00"),
        ("FREQ=MONTHLY;INTERVAL=2", "2016-03-30T06:00"),
        ("FREQ=YEARLY", "2016-02-29T06:00"),
        ("FREQ=YEARLY;BYMONTH=3,9", "2016-03-31T06:00"),
        ("FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,TH", "2016-01-04T06:00"),
        ("FREQ=MONTHLY;BYDAY=-1FR", "2016-01-29T06:00"),
        ("FREQ=MONTHLY;INTERVAL=5;BYDAY=1MO;BYSETPOS=1", "2016-01-04T06:00"),
        ("FREQ=YEARLY;BYWEEKNO=1,27;BYDAY=WE", "2016-01-06T06:00"),
        ("FREQ=YEARLY;INTERVAL=3;BYMONTH=2;BYMONTHDAY=29", "2016-02-29T06:00"),
        ("FREQ=DAILY;INTERVAL=9;BYMONTH=1,7", "2016-01-01T06:00"),
        ("FREQ=DAILY;BYHOUR=6,18;COUNT=9000", "2016-01-01T06:00"),
        ("FREQ=WEEKLY;UNTIL=20300101T000000Z", "2016-01-01T06:00"),
    ],
)
def test_searches_near_an_instant_find_what_the_whole_rule_does(rule: str, first: str) -> None:
    window = {"name": "w", "timezone": "UTC", "start": first, "duration": "PT1H", "rrule": rule}
    freezes = calendar(window)
    # dateutil walks the whole rule from its first occurrence (in UTC, local time is UTC).
    whole = rrulestr(rule.removesuffix("Z"), dtstart=datetime.fromisoformat(first))
    expected = [each.replace(tzinfo=UTC) for each in whole.between(*YEARS_LATER, inc=True)]
    found: list[datetime] = []
    at = YEARS_LATER[0].replace(tzinfo=UTC) - timedelta(seconds=1)
    while (upcoming := freezes.next_freeze_after(at)) and upcoming.started.year < 2031:
        found.append(upcoming.started)
        at = upcoming.started
    assert found == expected
    assert found, "the rule should recur in those years"


def test_until_in_utc_local_time_or_as_a_date() -> None:
    last = utc("2026-03-27T17:00")  # Friday 18:00 CET
    for until, holds in [
        ("20260327T170000Z", True),
        ("20260327T165959Z", False),
        ("20260327T180000", True),
        ("20260327T175959", False),
        ("20260327", True),
        ("20260326", False),
    ]:
        rule = f"FREQ=WEEKLY;BYDAY=FR;UNTIL={until}"
        freezes = calendar(weekend("Europe/Berlin", rrule=rule))
        assert (freezes.freeze_at(last) is not None) is holds, until
        assert freezes.freeze_at(last + timedelta(weeks=1)) is None


def test_a_count_ends_the_recurrence() -> None:
    freezes = calendar(weekend("Europe/Berlin", rrule="FREQ=WEEKLY;BYDAY=FR;COUNT=2"))
    assert freezes.freeze_at(utc("2026-01-10T12:00")) is not None
    assert freezes.freeze_at(utc("2026-01-17T12:00")) is None


def test_a_calendar_loads_from_yaml() -> None:
    text = """
windows:
  - name: year-end
    reason: change freeze for the holidays
    timezone: Europe/Berlin
    start: "2026-12-24T00:00"
    end: "2027-01-02T00:00"
    rrule: FREQ=YEARLY
  - name: weekend
    timezone: Europe/Berlin
    start: "2026-01-02T18:00"
    duration: PT62H
    rrule: FREQ=WEEKLY;BYDAY=FR
"""
    freezes = FreezeCalendar.model_validate(yaml.safe_load(text))
    assert [window.name for window in freezes.windows] == ["year-end", "weekend"]
    assert frozen(freezes, utc("2026-12-31T12:00")).until == utc("2027-01-04T07:00")


def refusal(window: dict[str, Any]) -> tuple[tuple[str | int, ...], str]:
    """Where and why the calendar of ``window`` is refused (the one error)."""
    with pytest.raises(ValidationError) as refused:
        calendar(window)
    [error] = refused.value.errors()
    return error["loc"], error["msg"]


def test_a_rule_that_does_not_parse_is_refused_naming_rrule_and_the_window() -> None:
    loc, message = refusal(weekend("Europe/Berlin", rrule="FREQ=WEEKLY;BYDAY=FRIDAY"))
    assert loc == ("windows", 0, "rrule")
    assert "window 'weekend'" in message
    assert "'FREQ=WEEKLY;BYDAY=FRIDAY' is not an RFC 5545 recurrence rule" in message
    assert "BYDAY" in message
    assert "for example FREQ=WEEKLY;BYDAY=FR" in message


@pytest.mark.parametrize(
    ("rule", "why"),
    [
        ("every friday", "'EVERY FRIDAY' is not NAME=VALUE"),
        ("BYDAY=FR", "FREQ is missing"),
        ("FREQ=HOURLY", "FREQ=HOURLY is none of YEARLY, MONTHLY, WEEKLY, DAILY"),
        ("FREQ=WEEKLY;FREQ=DAILY", "FREQ is given twice"),
        ("FREQ=WEEKLY;INTERVAL=0", "INTERVAL=0 is not a whole number of 1 or more"),
        ("FREQ=WEEKLY;COLOUR=RED", "unknown parameter 'COLOUR'"),
        ("FREQ=WEEKLY;COUNT=3;UNTIL=20270101", "COUNT and UNTIL both end it"),
        ("FREQ=WEEKLY;COUNT=0", "COUNT=0 leaves no occurrence"),
        ("FREQ=WEEKLY;UNTIL=tomorrow", "UNTIL=TOMORROW is not like 20271231T235959Z"),
        ("DTSTART:20260102T180000\nRRULE:FREQ=WEEKLY", "give the rule alone"),
        ("", "it is empty"),
    ],
)
def test_rules_that_cannot_be_used_are_refused_with_the_reason(rule: str, why: str) -> None:
    loc, message = refusal(weekend("Europe/Berlin", rrule=rule))
    assert loc == ("windows", 0, "rrule")
    assert why in message


@pytest.mark.parametrize(
    ("rule", "why"),
    [
        ("FREQ=WEEKLY;BYDAY=SA", "start 2026-01-02T18:00:00 is not one of its occurrences"),
        ("FREQ=WEEKLY;UNTIL=20251231", "it has no occurrence from start 2026-01-02T18:00:00 on"),
    ],
)
def test_a_rule_must_start_at_start(rule: str, why: str) -> None:
    loc, message = refusal(weekend("Europe/Berlin", rrule=rule))
    assert loc == ("windows", 0, "rrule")
    assert why in message


def test_an_unknown_time_zone_is_refused_naming_it() -> None:
    loc, message = refusal({**MOVE, "timezone": "Europe/Berln"})
    assert loc == ("windows", 0, "timezone")
    assert "unknown time zone 'Europe/Berln'" in message
    assert refusal({**MOVE, "timezone": "../etc/passwd"})[0] == ("windows", 0, "timezone")


@pytest.mark.parametrize("field", ["start", "end"])
def test_an_offset_is_refused_for_local_time_and_zone(field: str) -> None:
    loc, message = refusal({**MOVE, field: "2026-06-14T09:00+02:00"})
    assert loc == ("windows", 0, field)
    assert "has an offset: give the local time without one" in message
    assert "zone in timezone" in message
    assert refusal({**MOVE, field: "2026-06-14T09:00Z"})[0] == ("windows", 0, field)


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"end": "2026-06-13T09:00"}, "end 2026-06-13T09:00:00 is not after start"),
        ({"end": "2026-06-12T09:00"}, "end 2026-06-12T09:00:00 is not after start"),
        ({"end": None, "duration": "-PT1H"}, "duration -1 day, 23:00:00 is not positive"),
        ({"duration": "PT1H"}, "give end or duration (one of them)"),
        ({"end": None}, "give end or duration (one of them)"),
    ],
)
def test_a_window_must_have_one_positive_length(change: dict[str, Any], why: str) -> None:
    window = {key: value for key, value in {**MOVE, **change}.items() if value is not None}
    loc, message = refusal(window)
    assert loc == ("windows", 0)
    assert "window 'datacenter-move'" in message
    assert why in message


def test_unknown_keys_and_repeated_names_are_refused() -> None:
    loc, message = refusal({**MOVE, "timeZone": "UTC"})
    assert (loc, message) == (("windows", 0, "timeZone"), "Extra inputs are not permitted")
    with pytest.raises(ValidationError, match="unknown_key"):
        FreezeCalendar.model_validate({"windows": [], "unknown_key": 1})
    with pytest.raises(ValidationError, match="give each name once; repeated: datacenter-move"):
        calendar(MOVE, MOVE)
