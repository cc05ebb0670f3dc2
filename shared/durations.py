"""Durations as people write them in job files, settings and the CLI: seconds, or 90m, 2h, 3d.

A number is seconds; a string is a number of seconds, or numbers each followed by a unit `s`,
`m`, `h` or `d` (`"1.5h"`, `"90m"`, `"1h30m"` as `format_duration` shows it, `"45"`). What comes
back is whole seconds, at least 1 and at most a year: a limit of a fraction of a second or of
decades is a typo, refused with a reason.
"""

from __future__ import annotations

import math
import re

UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_SECONDS = 366 * 86400
_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)"
_DURATION = re.compile(rf"^(?:{_NUMBER}|(?:{_NUMBER}[smhd])+)$")
_PART = re.compile(rf"({_NUMBER})([smhd]?)")


def parse_duration(value: object) -> int:
    """Whole seconds of `value` (a number of seconds, or a string like '90m'); ValueError says why not."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string like '90m', '2h', '3d'")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        if _DURATION.match(text) is None:
            raise ValueError(f"{value!r} is not a duration: give seconds or numbers with a unit s, m, h or d "
                             "(90m, 2h, 1h30m, 3d)")
        seconds = sum(float(number) * UNITS[unit] for number, unit in _PART.findall(text))
    else:
        raise ValueError("a duration is a number of seconds or a string like '90m', '2h', '3d'")
    if not math.isfinite(seconds) or seconds < 1:
        raise ValueError("a duration must be at least 1 second")
    if seconds > MAX_SECONDS:
        raise ValueError("a duration must be at most 366 days")
    return round(seconds)


def format_duration(seconds: float) -> str:
    """Compact and exact to the minute: 45s, 90m → 1h30m, 2h, 3d, 1d12h."""
    seconds = max(round(seconds), 0)
    if seconds < 60:
        return f"{seconds}s"
    parts, rest = [], seconds
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{count}{unit}")
        if len(parts) == 2:
            break
    return "".join(parts)
