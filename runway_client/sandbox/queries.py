"""The query of ``GET /output-sets``: its shape, checked as class-validator would.

Every failing field is reported at once (a 400 whose ``message`` is a list), in this
order: ``schoolYear`` (``^\\d{4}$``), ``sentToOds`` (``true``/``false``), ``createdAfter``
(an ISO-8601 date-time with a time zone). ``partner`` is checked by the route (its
message is a plain string), as is the range of ``schoolYear`` (CONTRACT.md "Output sets").

>>> parse_output_set_query({"partner": "ea", "schoolYear": "26", "sentToOds": "yes"})
['schoolYear must be a 4-digit year', 'sentToOds must be a boolean value']
>>> parse_output_set_query({"createdAfter": "2026-01-01T00:00:00.5+01:00"}).created_after
datetime.datetime(2025, 12, 31, 23, 0, 0, 500000, tzinfo=datetime.timezone.utc)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Final

from runway_client.sandbox.output_sets import SandboxOutputSet

SCHOOL_YEAR_FORMAT: Final = "schoolYear must be a 4-digit year"
SENT_TO_ODS_FORMAT: Final = "sentToOds must be a boolean value"
CREATED_AFTER_FORMAT: Final = "createdAfter must be a valid ISO 8601 date string"
_FOUR_DIGITS: Final = re.compile(r"[0-9]{4}")
_BOOLEANS: Final = {"true": True, "false": False}
_DATE_TIME: Final = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})T(?P<time>[0-9]{2}:[0-9]{2}:[0-9]{2})"
    r"(?:[.,](?P<fraction>[0-9]+))?"
    r"(?:(?P<utc>[Zz])|(?P<sign>[+-])(?P<hours>[0-9]{2}):?(?P<minutes>[0-9]{2}))"
)


@dataclass(frozen=True, slots=True)
class OutputSetQuery:
    """The filters of ``GET /output-sets``; ``None`` where a filter was not given."""

    partner: str | None = None
    tenant: str | None = None
    school_year: str | None = None
    sent_to_ods: bool | None = None
    created_after: datetime | None = None
    bundle: str | None = None

    def matches(self, output_set: SandboxOutputSet) -> bool:
        """Whether ``output_set`` passes every filter given (``createdAfter``: strictly after)."""
        return (
            (self.partner is None or output_set.partner == self.partner)
            and (self.tenant is None or output_set.tenant == self.tenant)
            and (self.school_year is None or output_set.school_year == self.school_year)
            and (self.sent_to_ods is None or output_set.sent_to_ods == self.sent_to_ods)
            and (self.created_after is None or output_set.created_at > self.created_after)
            and (self.bundle is None or output_set.bundle == self.bundle)
        )


def parse_date_time(text: str) -> datetime | None:
    """An ISO-8601 date-time with seconds and a time zone, as aware UTC; else ``None``.

    >>> parse_date_time("2026-01-01T00:00:00Z"), parse_date_time("2026-01-01")
    (datetime.datetime(2026, 1, 1, 0, 0, tzinfo=datetime.timezone.utc), None)
    >>> parse_date_time("2026-02-30T00:00:00Z") is None
    True
    """
    found = _DATE_TIME.fullmatch(text)
    if found is None:
        return None
    fraction = (found["fraction"] or "0")[:6].ljust(6, "0")
    try:
        local = datetime.fromisoformat(f"{found['date']}T{found['time']}.{fraction}")
        zone = UTC
        if found["utc"] is None:
            if int(found["minutes"]) > 59:
                return None
            offset = timedelta(hours=int(found["hours"]), minutes=int(found["minutes"]))
            zone = timezone(-offset if found["sign"] == "-" else offset)
        return local.replace(tzinfo=zone).astimezone(UTC)
    except ValueError:  # a day, hour or offset out of range
        return None


def parse_output_set_query(args: Mapping[str, str]) -> OutputSetQuery | list[str]:
    """The query's filters, or every failing field's message (a 400 list)."""
    errors: list[str] = []
    school_year = args.get("schoolYear")
    if school_year is not None and not _FOUR_DIGITS.fullmatch(school_year):
        errors.append(SCHOOL_YEAR_FORMAT)
    sent_to_ods = args.get("sentToOds")
    if sent_to_ods is not None and sent_to_ods not in _BOOLEANS:
        errors.append(SENT_TO_ODS_FORMAT)
    raw_after = args.get("createdAfter")
    created_after = None if raw_after is None else parse_date_time(raw_after)
    if raw_after is not None and created_after is None:
        errors.append(CREATED_AFTER_FORMAT)
    if errors:
        return errors
    return OutputSetQuery(
        partner=args.get("partner"),
        tenant=args.get("tenant"),
        school_year=school_year,
        sent_to_ods=None if sent_to_ods is None else _BOOLEANS[sent_to_ods],
        created_after=created_after,
        bundle=args.get("bundle"),
    )
