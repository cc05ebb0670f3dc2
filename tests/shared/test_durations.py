"""Durations as job files, settings and the CLI write them: seconds, or a number with s, m, h or d."""

from __future__ import annotations

import pytest

from shared.durations import format_duration, parse_duration


@pytest.mark.parametrize(("given", "seconds"), [
    (45, 45), (1.4, 1), (7200.0, 7200), ("45", 45), ("45s", 45), ("90m", 5400), ("2h", 7200), ("3d", 259200),
    ("1.5h", 5400), (" 2H ", 7200), ("0.5m", 30), (".5h", 1800), ("366d", 366 * 86400), ("1h30m", 5400),
    ("1d 12h", 129600),
])
def test_durations_read_as_whole_seconds(given, seconds) -> None:
    assert parse_duration(given) == seconds


@pytest.mark.parametrize(("given", "why"), [
    ("soon", "not a duration"), ("2w", "not a duration"), ("1h30", "not a duration"), ("-5m", "not a duration"),
    ("h", "not a duration"), ("1e3", "not a duration"),
    ("", "not a duration"), (0, "at least 1 second"), (0.2, "at least 1 second"), (-3, "at least 1 second"),
    ("0s", "at least 1 second"), ("367d", "at most 366 days"), (float("inf"), "at least 1 second"),
    (float("nan"), "at least 1 second"), (True, "number of seconds"), (None, "number of seconds"),
    ([60], "number of seconds"),
])
def test_a_bad_duration_says_why(given, why) -> None:
    with pytest.raises(ValueError, match=why):
        parse_duration(given)


@pytest.mark.parametrize(("seconds", "shown"), [
    (0, "0s"), (45, "45s"), (60, "1m"), (5400, "1h30m"), (7200, "2h"), (259200, "3d"), (129600, "1d12h"),
    (86400 + 300, "1d5m"), (3 * 86400 + 7 * 3600 + 59 * 60, "3d7h"), (-4, "0s"), (59.6, "1m"),
])
def test_durations_shown_compactly_and_read_back(seconds, shown) -> None:
    assert format_duration(seconds) == shown
    if seconds >= 1:  # what is shown reads back, to the two largest units shown
        assert abs(seconds - parse_duration(shown)) < (3600 if shown.endswith("h") and "d" in shown else 60)
