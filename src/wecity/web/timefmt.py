"""SLA countdowns as people read them: "2 h 05 min left", "overdue by 1 d 3 h" (server side; JS keeps them live)."""

from __future__ import annotations

from collections.abc import Callable

from wecity.web.i18n import N_

DAYS_HOURS, HOURS_MINUTES, MINUTES = N_("%(d)d d %(h)d h"), N_("%(h)d h %(m)02d min"), N_("%(m)d min")
FORMATS = {"dh": DAYS_HOURS, "hm": HOURS_MINUTES, "m": MINUTES}
LEFT, OVERDUE = N_("%(t)s left"), N_("overdue by %(t)s")


def duration(seconds: int, _: Callable[[str], str]) -> str:
    minutes = abs(seconds) // 60
    days, hours, mins = minutes // 1440, (minutes % 1440) // 60, minutes % 60
    if days:
        return _(DAYS_HOURS) % {"d": days, "h": hours}
    if hours:
        return _(HOURS_MINUTES) % {"h": hours, "m": mins}
    return _(MINUTES) % {"m": mins}


def countdown(seconds: int | None, _: Callable[[str], str]) -> str:
    if seconds is None:
        return ""
    return (_(LEFT) if seconds >= 0 else _(OVERDUE)) % {"t": duration(seconds, _)}
