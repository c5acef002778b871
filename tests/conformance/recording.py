"""A condensed recording (tests/conformance/recordings/<lang>/<name>.json, see recordings/NOTICE.md) as frozen
dataclasses, and what its paths name: the pools, jobs, job schedules and nodes an entry touches."""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

RECORDINGS = Path(__file__).resolve().parent / "recordings"


@dataclass(frozen=True)
class Entry:
    index: int
    method: str
    path: str
    query: str
    request_body: Any
    status: int
    response_body: Any
    repeat: int = 1
    truncated: bool = False

    @property
    def error_code(self) -> str:
        body = self.response_body
        return str(body.get("code", "")) if isinstance(body, dict) else ""


@dataclass(frozen=True)
class Recording:
    name: str            # "python/test_batch_jobs.json": the file under recordings/
    source: str
    entries: tuple[Entry, ...]

    @property
    def language(self) -> str:
        return self.name.split("/", 1)[0]


def load(name: str) -> Recording:
    doc = json.loads((RECORDINGS / name).read_text(encoding="utf-8"))
    entries = tuple(Entry(index, e["method"].upper(), e["path"], e.get("query") or "", e.get("requestBody"),
                          int(e["status"]), e.get("responseBody"), int(e.get("repeat") or 1), bool(e.get("truncated")))
                    for index, e in enumerate(doc["entries"]))
    return Recording(name, doc.get("source", ""), entries)


def recording_names() -> list[str]:
    return sorted(str(p.relative_to(RECORDINGS)) for p in RECORDINGS.glob("*/*.json"))


def segments(path: str) -> list[str]:
    return [unquote(part) for part in path.strip("/").split("/")]


def resource_of(path: str) -> tuple[str, str] | None:
    """("pools"|"jobs"|"jobschedules", id) that ``path`` names or lies under, or None (a collection, /nodecounts)."""
    parts = segments(path)
    if len(parts) >= 2 and parts[0] in ("pools", "jobs", "jobschedules"):
        return parts[0], parts[1]
    return None


def resources_of(path: str) -> list[tuple[str, str]]:
    """Every resource ``path`` names, outermost first: its pool, job or schedule, then a task or a node user
    (("tasks", "job/task"), ("users", "pool/node/user"))."""
    parts = segments(path)
    top = resource_of(path)
    found = [top] if top else []
    if len(parts) >= 4 and parts[0] == "jobs" and parts[2] == "tasks":
        found.append(("tasks", f"{parts[1]}/{parts[3]}"))
    if len(parts) >= 6 and parts[0] == "pools" and parts[2] == "nodes" and parts[4] == "users":
        found.append(("users", f"{parts[1]}/{parts[3]}/{parts[5]}"))
    return found


def node_of(path: str) -> tuple[str, str] | None:
    """(pool id, recorded node id) for a path under /pools/{pool}/nodes/{node}, else None."""
    parts = segments(path)
    if len(parts) >= 4 and parts[0] == "pools" and parts[2] == "nodes":
        return parts[1], parts[3]
    return None


def created_by(entry: Entry) -> list[tuple[str, str]]:
    """The resources a recorded add creates: pools, jobs, schedules, tasks (one or a collection), node users."""
    parts = segments(entry.path)
    body = entry.request_body if isinstance(entry.request_body, dict) else {}
    if entry.method != "POST":
        return []
    if len(parts) == 1 and parts[0] in ("pools", "jobs", "jobschedules") and body.get("id"):
        return [(parts[0], str(body["id"]))]
    if len(parts) == 3 and parts[0] == "jobs" and parts[2] == "tasks" and body.get("id"):
        return [("tasks", f"{parts[1]}/{body['id']}")]
    if len(parts) == 3 and parts[0] == "jobs" and parts[2] == "addtaskcollection":
        return [("tasks", f"{parts[1]}/{t.get('id')}") for t in body.get("value") or [] if isinstance(t, dict)]
    if len(parts) == 5 and parts[0] == "pools" and parts[4] == "users" and body.get("name"):
        return [("users", f"{parts[1]}/{parts[3]}/{body['name']}")]
    return []


def answers_about(recording: Recording, kind: str, ident: str) -> list[dict[str, Any]]:
    """Every recorded 2xx JSON object that describes resource ``kind``/``ident`` (its GET answers and list items)."""
    found: list[dict[str, Any]] = []
    for entry in recording.entries:
        body = entry.response_body
        if entry.method != "GET" or not 200 <= entry.status < 300 or not isinstance(body, dict):
            continue
        parts = segments(entry.path)
        if parts == [kind, ident]:
            found.append(body)
        elif parts == [kind]:
            found.extend(item for item in body.get("value") or [] if isinstance(item, dict) and item.get("id") == ident)
    return found
