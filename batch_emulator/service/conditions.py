"""The HTTP preconditions of a write (If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since).

The HTTP layer collects the headers as sent; the service checks them against the object's ETag and
last-modified time under the account lock, after the object's lookup (404 before 412), as the service does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime

from .errors import service_error

HEADERS = ("if-match", "if-none-match", "if-modified-since", "if-unmodified-since")


@dataclass(frozen=True)
class Conditions:
    """The precondition headers of one request, as sent (lowercased names; absent ones left out)."""
    sent: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> Conditions:
        return cls(tuple((name, headers[name]) for name in HEADERS if name in headers))

    def check(self, etag: str, last_modified: datetime) -> None:
        """412 ConditionNotMet when one fails, nothing changed; a malformed date is a 400 InvalidHeaderValue.
        Times compare to the second, as HTTP dates do."""
        given = dict(self.sent)

        def _date(name: str) -> datetime:
            try:
                return parsedate_to_datetime(given[name])
            except (TypeError, ValueError, IndexError):
                raise service_error(400, "InvalidHeaderValue", HeaderName=name, HeaderValue=given[name]) from None

        modified = last_modified.replace(microsecond=0)
        failed = False
        if "if-match" in given:
            failed |= given["if-match"].strip() not in ("*", etag)
        if "if-none-match" in given:
            failed |= given["if-none-match"].strip() in ("*", etag)
        if "if-unmodified-since" in given:
            failed |= modified > _date("if-unmodified-since")
        if "if-modified-since" in given:
            failed |= modified <= _date("if-modified-since")
        if failed:
            raise service_error(412, "ConditionNotMet")
