"""The recorded run's absolute times, moved to the replay's now: a recorded test sent times relative to its own
clock (a schedule's doNotRunAfter five hours on, a node user's expiryTime), which are long past when replayed, so a
request body's absolute times are shifted by (now - the recorded run's time), each in its own format.

The recorded run's time is the earliest moment the recording shows of the run itself: the creationTime of a
resource the recording adds, and the "Time:" of an error message (the service's clock when it answered). Only when
it shows neither, the earliest creationTime / lastModified / stateTransitionTime of any answer (which may be a
resource made long before the run: a fixture pool). A recording with no time at all is not shifted.
"""

import json
import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

from tests.conformance.recording import Recording, created_by

# An absolute ISO-8601 time: a date, a time to the minute (seconds and any fraction optional), and a zone.
TIMESTAMP = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|z|[+-]\d{2}:?\d{2})")
EVENT_KEYS = ("creationTime", "lastModified", "stateTransitionTime")
MESSAGE_TIME = re.compile(r"Time:(\d{4}-\d{2}-\d{2}T[0-9:.]+Z)")
MICROSECOND = timedelta(microseconds=1)


def parse(text: str) -> datetime | None:
    """``text`` as an aware datetime (to the microsecond) if the whole of it is an absolute time, else None."""
    match = TIMESTAMP.fullmatch(text)
    if not match:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        moment = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second or 0),
                          int((fraction or "0")[:6].ljust(6, "0")), tzinfo=zone_of(zone))
    except ValueError:              # 2025-13-40T...: looks like a time, is not one
        return None
    return moment


def zone_of(zone: str) -> timezone:
    if zone in ("Z", "z"):
        return timezone.utc
    sign = -1 if zone[0] == "-" else 1
    digits = zone[1:].replace(":", "")
    return timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))


def shift(text: str, delta: timedelta) -> str:
    """``text`` (an absolute time) moved by ``delta``, in its own format: its zone as written, as many fraction
    digits as it had (a 7-digit .NET fraction keeps its last digit), no seconds if it had none (then to the
    minute). Anything that is not an absolute time comes back as it is."""
    match = TIMESTAMP.fullmatch(text)
    moment = parse(text)
    if not match or moment is None:
        return text
    # the seconds and fraction as written, not parse()'s microseconds
    second, fraction, zone = match.group(6), match.group(7), match.group(8)
    digits = len(fraction) if fraction else 0
    units = 10 ** digits                                   # fraction units per second
    whole = moment.replace(microsecond=0)
    micros = round(delta / MICROSECOND)
    # the fraction as written plus the shift, in the fraction's own units (no precision lost beyond it)
    # (a shift finer than the written fraction is rounded down to it)
    ticks = int(fraction or "0") + (micros * units // 1_000_000 if digits <= 6 else micros * 10 ** (digits - 6))
    moved = whole + timedelta(seconds=ticks // units)
    out = moved.strftime("%Y-%m-%dT%H:%M")
    if second is not None:
        out += moved.strftime(":%S")
        if fraction is not None:
            out += "." + str(ticks % units).rjust(digits, "0")
    return out + zone


def shifted(body: Any, delta: timedelta) -> Any:
    """``body`` (JSON) with every string value that is an absolute time moved by ``delta``."""
    if not delta:
        return body
    if isinstance(body, dict):
        return {k: shifted(v, delta) for k, v in body.items()}
    if isinstance(body, list):
        return [shifted(v, delta) for v in body]
    return shift(body, delta) if isinstance(body, str) else body


def objects(body: Any) -> Iterator[dict[str, Any]]:
    """Every JSON object in ``body``, at any depth."""
    if isinstance(body, dict):
        yield body
        for value in body.values():
            yield from objects(value)
    elif isinstance(body, list):
        for value in body:
            yield from objects(value)


def recorded_time(recording: Recording) -> datetime | None:
    """When the recorded run happened (its earliest moment the recording shows; the module docstring says how)."""
    added = {ident.split("/")[-1] for e in recording.entries if e.status < 300 for _, ident in created_by(e)}
    own: list[datetime] = []
    any_event: list[datetime] = []
    for entry in recording.entries:
        body = entry.response_body
        for found in MESSAGE_TIME.findall(json.dumps(body)) if entry.status >= 400 else ():
            own.extend(t for t in [parse(found)] if t)
        for item in objects(body):
            events = [t for t in (parse(item[k]) for k in EVENT_KEYS if isinstance(item.get(k), str)) if t]
            any_event.extend(events)
            if item.get("id") in added and isinstance(item.get("creationTime"), str):
                own.extend(t for t in [parse(item["creationTime"])] if t)
    found = own or any_event
    return min(found) if found else None


def offset(recording: Recording, now: datetime) -> timedelta:
    """What to add to the recording's absolute times so its run happens at ``now`` (nothing if it shows no time)."""
    recorded = recorded_time(recording)
    return now - recorded if recorded else timedelta(0)
