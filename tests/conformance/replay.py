"""The conformance replayer: Microsoft's recorded requests, sent in order to a fresh emulator, each answer put in
one bucket (issue 21):

- SAME: the recorded status and the recorded shape (keys and enum spellings; ids, times, ETags, URLs aside);
- OTHER_STATUS: another status; OTHER_SHAPE: the status, with other keys, enum spellings or error code;
- UNSUPPORTED: the entry uses a feature batch_emulator/README.md lists as absent (the entry says which).

Before the first entry, what the recording takes for granted is made (preconditions.py). Node ids are the
service's own: the n-th node the recording saw is the n-th the emulator shows (``Ids``). An entry whose status the
emulator reaches only later (a node still starting, a pool resizing) and that is safe to resend (a GET or HEAD, or
an answer that changed nothing: 409) is resent until it matches or ``STATUS_WAIT`` passes; a GET the recording itself
polled (repeat > 1) is resent until its shape matches too, for ``SHAPE_WAIT``. The recorded run happens now: every
absolute time a request body holds is moved by (now - the recorded run's time) (times.py).
"""

import base64
import json
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from enum import Enum
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

from azure.batch._patch import BatchSharedKeyAuthPolicy  # the SDK's own signer, as recorded_client uses it
from azure.core import PipelineClient
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.rest import HttpRequest

from batch_emulator import DEFAULT_ACCOUNT_NAME
from tests.conformance import preconditions, shapes, times
from tests.conformance.recording import Entry, Recording, node_of, segments
from tests.e2e.recorded_client import Answer, Raw

README = Path(__file__).resolve().parents[2] / "batch_emulator" / "README.md"
STATUS_WAIT = 5.0
SHAPE_WAIT = 5.0
KNOWN_WAIT = 0.5
NODE_WAIT = 10.0
POLL = 0.1
NODE_ID = re.compile(r"tvmps_[0-9a-f]{64}_[dp]")


class Bucket(str, Enum):
    SAME = "SAME"
    OTHER_STATUS = "OTHER_STATUS"
    OTHER_SHAPE = "OTHER_SHAPE"
    UNSUPPORTED = "UNSUPPORTED"


@dataclass(frozen=True)
class Outcome:
    index: int
    method: str
    path: str
    recorded_status: int
    status: int
    bucket: Bucket
    detail: str = ""           # the shape difference, the emulator's error code, or the unsupported feature

    def line(self) -> str:
        return (f"#{self.index} {self.method} {self.path}: recorded {self.recorded_status}, emulator {self.status}"
                f" {self.bucket.value} {self.detail}").rstrip()


@dataclass(frozen=True)
class Report:
    recording: str
    outcomes: tuple[Outcome, ...]

    def counts(self) -> dict[str, int]:
        found = Counter(o.bucket.value for o in self.outcomes)
        return {b.value: found.get(b.value, 0) for b in Bucket}

    def line(self) -> str:
        return f"{self.recording}: " + ", ".join(f"{k} {v}" for k, v in self.counts().items())


# --- Unsupported features: (a word of the README's Absent list, how an entry shows the feature) ------------------

def body_has(*keys: str) -> Callable[[Entry], bool]:
    """An entry whose request body holds a non-empty value under any of ``keys``, at any depth."""
    def has(entry: Entry) -> bool:
        def walk(value: Any) -> bool:
            if isinstance(value, dict):
                return any((k in keys and v not in (None, [], {})) or walk(v) for k, v in value.items())
            return isinstance(value, list) and any(walk(v) for v in value)
        return walk(entry.request_body)
    return has


def path_matches(pattern: str, methods: tuple[str, ...] = ()) -> Callable[[Entry], bool]:
    compiled = re.compile(pattern)
    return lambda e: bool(compiled.search(e.path)) and (not methods or e.method in methods)


def query_has(text: str) -> Callable[[Entry], bool]:
    return lambda e: text in e.query.replace("%24", "$").replace("%3D", "=")


RULES: tuple[tuple[str, Callable[[Entry], bool]], ...] = (
    ("certificates", path_matches(r"^/certificates")),
    ("certificates", body_has("certificateReferences")),
    ("applications", path_matches(r"^/applications")),
    ("applications", body_has("applicationPackageReferences")),
    ("containers", body_has("containerConfiguration", "containerSettings")),
    ("mounts", body_has("mountConfiguration")),
    ("node users", path_matches(r"^/pools/[^/]+/nodes/[^/]+/users")),
    ("remote login", path_matches(r"^/pools/[^/]+/nodes/[^/]+/(remoteloginsettings|rdp)$")),
    ("remove nodes", path_matches(r"^/pools/[^/]+/removenodes$")),
    ("service log upload", path_matches(r"/uploadbatchservicelogs$")),
    ("task replace", path_matches(r"^/jobs/[^/]+/tasks/[^/]+$", ("PUT",))),
    ("usage metrics", path_matches(r"^/poolusagemetrics")),
    ("statistics", path_matches(r"^/lifetime(pool|job)stats")),
    ("statistics", query_has("$expand=stats")),
    ("autoStorageContainerName", body_has("autoStorageContainerName")),
)


def absent_text(readme: Path = README) -> str:
    """The README's "**Absent**" bullet (Limitations), as one line of text."""
    lines = readme.read_text(encoding="utf-8").splitlines()
    for start, line in enumerate(lines):
        if line.lstrip().startswith("- **Absent**"):
            rest = [line]
            for following in lines[start + 1:]:
                if not following.strip() or following.lstrip().startswith("- "):
                    break
                rest.append(following.strip())
            return " ".join(rest)
    return ""


def unsupported_feature(entry: Entry, absent: str) -> str:
    """The absent feature ``entry`` uses ("" if none): only features the README's Absent list still names count."""
    words = absent.lower()
    for feature, shows in RULES:
        if feature.lower() in words and shows(entry):
            return feature
    return ""


# --- Ids the service made: recorded node id <-> emulator node id --------------------------------------------------

@dataclass(frozen=True)
class Ids:
    nodes: dict[str, str] = field(default_factory=dict)          # recorded node id -> emulator node id
    next_links: dict[str, str] = field(default_factory=dict)     # path -> the emulator's last odata.nextLink

    def learn_list(self, recorded: Any, emulated: Any) -> None:
        """A node list answered on both sides: the n-th recorded node is the n-th emulator node."""
        if not (isinstance(recorded, dict) and isinstance(emulated, dict)):
            return
        taken = set(self.nodes.values())
        mine = [n.get("id") for n in emulated.get("value") or [] if n.get("id") not in taken]
        for node in recorded.get("value") or []:
            if node.get("id") not in self.nodes and mine:
                self.nodes[node["id"]] = mine.pop(0)

    def learn_tasks(self, recorded: Any, emulated: Any) -> None:
        """Task answers on both sides: the node a recorded task ran on is the node the emulator ran it on (this
        wins over list order, so a task's node files are looked for where the task ran)."""
        def nodes(body: Any) -> dict[str, str]:
            items = (body.get("value") or [body]) if isinstance(body, dict) else []
            return {t["id"]: t["nodeInfo"]["nodeId"] for t in items
                    if isinstance(t, dict) and t.get("id") and (t.get("nodeInfo") or {}).get("nodeId")}
        mine = nodes(emulated)
        for task, node in nodes(recorded).items():
            if task in mine and self.nodes.get(node) != mine[task]:
                for other, theirs in list(self.nodes.items()):
                    if theirs == mine[task]:
                        del self.nodes[other]
                self.nodes[node] = mine[task]

    def node(self, raw: Raw, pool: str, recorded: str) -> str:
        """The emulator node standing for ``recorded`` (a pool's next unmapped node when first met)."""
        deadline = time.monotonic() + NODE_WAIT
        while recorded not in self.nodes and time.monotonic() < deadline:
            taken = set(self.nodes.values())
            answer = raw("GET", f"/pools/{quote(pool)}/nodes")
            free = [n["id"] for n in (answer.json or {}).get("value", []) if n["id"] not in taken]
            if free:
                self.nodes[recorded] = free[0]
            elif answer.status != 200:
                break                       # no such pool: the recorded id stays, and gets the emulator's 404
            else:
                time.sleep(POLL)            # the pool's nodes are still being allocated
        return self.nodes.get(recorded, recorded)


def translate(raw: Raw, ids: Ids, path: str) -> str:
    """``path`` with the emulator's node id for the recorded one."""
    node = node_of(path)
    return path.replace(node[1], ids.node(raw, node[0], node[1])) if node else path


def substitute(raw: Raw, ids: Ids, entry: Entry, delta: timedelta = timedelta(0)) -> tuple[str, str, Any]:
    """The entry's path, query and body with the emulator's node ids and paging token, and the body's absolute
    times moved by ``delta`` (to now)."""
    path = translate(raw, ids, entry.path)
    body = entry.request_body
    if body is not None:
        pool = segments(path)[1] if segments(path)[0] == "pools" and len(segments(path)) > 1 else ""
        text = json.dumps(body)
        for recorded in sorted(set(NODE_ID.findall(text))):
            text = text.replace(recorded, ids.node(raw, pool, recorded) if pool else recorded)
        body = json.loads(text)
        if entry.status < 300 or entry.error_code.endswith("Exists"):   # a subnet the service accepted (or would have)
            body = preconditions.own_subscription(body)
        body = times.shifted(body, delta)
    return path, paging(entry.query, ids.next_links.get(entry.path)), body


def paging(query: str, next_link: str | None) -> str:
    """The recorded query with the emulator's $skiptoken (the recorded one is sanitized)."""
    if "skiptoken" not in query.lower() or not next_link:
        return query
    token = dict(parse_qsl(urlsplit(next_link).query)).get("$skiptoken", "")
    return re.sub(r"(?i)(%24|\$)skiptoken=[^&]*", "$skiptoken=" + quote(token, safe=""), query)


# --- Sending and bucketing ---------------------------------------------------------------------------------------

def send(raw: Raw, method: str, path: str, query: str, body: Any, client: PipelineClient | None = None) -> Answer:
    """One signed request with the recorded query string as it is (the emulator accepts any api-version)."""
    headers = {"Content-Type": "application/json; odata=minimalmetadata"} if body is not None else {}
    request = HttpRequest(method, f"{raw.base}{path}?{query}" if query else f"{raw.base}{path}", headers=headers,
                          content=json.dumps(body) if body is not None else None)
    return Answer((client or raw.client).send_request(request))


def stranger(base: str) -> PipelineClient:
    """A client that signs with a key the account does not have: for the entries the service refused with 403
    AuthenticationFailed (a recorded test that used wrong credentials on purpose)."""
    wrong = base64.b64encode(b"not the account key, on purpose: the recorded test's own").decode()
    return PipelineClient(base, policies=[BatchSharedKeyAuthPolicy(AzureNamedKeyCredential(DEFAULT_ACCOUNT_NAME,
                                                                                            wrong))])


def shape_of(entry: Entry, answer: Answer) -> shapes.ShapeDiff:
    recorded = entry.response_body
    if not isinstance(recorded, dict):       # none, or a file's content: only its presence is compared
        extra = isinstance(answer.json, dict) and bool(answer.json) and recorded is None
        return shapes.ShapeDiff(extra=("<body>",) if extra else ())
    return shapes.compare(recorded, answer.json, error=entry.status >= 400)


def states(body: Any) -> tuple[Any, ...]:
    """The states an answer shows (its own, or its list items'): what a polling test waits for."""
    if not isinstance(body, dict):
        return ()
    items = body.get("value") if isinstance(body.get("value"), list) else [body]
    return tuple(sorted((str(i.get("state")), str(i.get("allocationState"))) for i in items if isinstance(i, dict)))


def settled(entry: Entry, answer: Answer) -> bool:
    """Whether a resent GET may stop: the recorded poll's end (its states), or the recorded shape, is reached."""
    return states(entry.response_body) == states(answer.json) or not shape_of(entry, answer)


def settle(raw: Raw, entry: Entry, sent: tuple[str, str, Any], status_wait: float, shape_wait: float) -> Answer:
    """Send the entry, and resend it while it is safe to and its status (or, for a recorded poll, its states) is
    not yet the recorded one."""
    start = time.monotonic()
    while True:
        answer = send(raw, entry.method, *sent, client=stranger(raw.base) if entry.error_code == "AuthenticationFailed"
                      else None)
        safe = entry.method in ("GET", "HEAD") or answer.status == 409
        waited = time.monotonic() - start
        if answer.status != entry.status:
            if not safe or waited > status_wait:
                return answer
        elif entry.repeat == 1 or entry.method != "GET" or waited > shape_wait or settled(entry, answer):
            return answer
        time.sleep(POLL)


def bucket_of(entry: Entry, answer: Answer, feature: str) -> tuple[Bucket, str]:
    if feature:
        return Bucket.UNSUPPORTED, feature
    if answer.status != entry.status:
        code = (answer.json or {}).get("code", "") if isinstance(answer.json, dict) else ""
        return Bucket.OTHER_STATUS, str(code)
    diff = shape_of(entry, answer)
    return (Bucket.OTHER_SHAPE, diff.summary()) if diff else (Bucket.SAME, "")


def replay(recording: Recording, base_url: str, known: frozenset[int] = frozenset(),
           absent: str | None = None) -> Report:
    """Replay ``recording`` against the emulator at ``base_url``; ``known``: indexes listed as known differences
    (resent for KNOWN_WAIT only, so a run stays short)."""
    raw = Raw(base_url)
    absent = absent_text() if absent is None else absent
    ids = Ids()
    delta = times.offset(recording, datetime.now(timezone.utc))     # once: the run's times keep their spacing
    for precondition in preconditions.infer(recording):
        precondition = replace(precondition, body=times.shifted(precondition.body, delta))
        preconditions.make(raw, precondition, lambda path: translate(raw, ids, path))
    outcomes = []
    for entry in recording.entries:
        feature = unsupported_feature(entry, absent)
        wait = 0.0 if feature else KNOWN_WAIT if entry.index in known else STATUS_WAIT
        for _ in range(entry.repeat if "skiptoken" in entry.query.lower() else 1):   # each page of a collapsed run
            answer = settle(raw, entry, substitute(raw, ids, entry, delta), wait, min(wait, SHAPE_WAIT))
            if isinstance(answer.json, dict) and answer.json.get("odata.nextLink"):
                ids.next_links[entry.path] = answer.json["odata.nextLink"]
        if entry.method == "GET" and segments(entry.path)[-1] == "nodes":
            ids.learn_list(entry.response_body, answer.json)
        if entry.method == "GET" and segments(entry.path)[:1] == ["jobs"] and "tasks" in segments(entry.path):
            ids.learn_tasks(entry.response_body, answer.json)
        bucket, detail = bucket_of(entry, answer, feature)
        outcomes.append(Outcome(entry.index, entry.method, entry.path, entry.status, answer.status, bucket, detail))
    return Report(recording.name, tuple(outcomes))
