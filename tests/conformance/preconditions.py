"""What a recording takes for granted: the pools, jobs and job schedules its test made before recording started
(a fixture, or an earlier test of the same run), inferred from the recording itself and made in the emulator first.

A resource is a precondition when the first entry that names it (in its path) is not its add and was answered as
if it existed (2xx, or a 409 that is not "...Exists"/"...NotFound"). Its body comes from what the recording shows
of it: a recorded GET of the pool (size, image, network endpoints) or of the job (its poolInfo), and a pool gets as
many nodes as the recording ever lists or names (they are waited for, idle, as the recorded tests' fixtures do).
"""

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from batch_emulator.service.resource_ids import ACCOUNT_SUBSCRIPTION_ID
from tests.conformance.recording import (
    Recording,
    answers_about,
    created_by,
    node_of,
    resource_of,
    resources_of,
    segments,
)
from tests.conftest import wait_for
from tests.e2e.recorded_client import IMAGE

POOL_KEYS = ("displayName", "vmSize", "taskSlotsPerNode", "enableInterNodeCommunication", "metadata",
             "taskSchedulingPolicy")


@dataclass(frozen=True)
class Precondition:
    kind: str                  # "pools", "jobschedules", "jobs", "tasks", "users", "nodes" (a state only)
    ident: str                 # tasks "job/task", users "pool/node/user", nodes "pool/node"
    body: dict[str, Any]
    nodes: int = 0             # pools: idle nodes to wait for
    then: tuple[tuple[str, str, Any], ...] = ()     # (method, path, body) that give it the state the recording needs

    @property
    def collection(self) -> str:
        """Where it is added (node paths hold the recorded node id: the replay substitutes the emulator's)."""
        parts = self.ident.split("/")
        if self.kind == "tasks":
            return f"/jobs/{parts[0]}/tasks"
        if self.kind == "users":
            return f"/pools/{parts[0]}/nodes/{parts[1]}/users"
        return f"/{self.kind}"


# The state a resource must be in for the first entry that names it, by that entry's last path segment:
# (kind, action) -> (method, path suffix, body) sent after the resource is made.
STATE_BEFORE: dict[tuple[str, str], tuple[str, str, Any]] = {
    ("jobs", "enable"): ("POST", "disable", {"disableTasks": "requeue"}),
    ("jobschedules", "enable"): ("POST", "disable", None),
    ("nodes", "enablescheduling"): ("POST", "disablescheduling", {}),
}
KINDS = ("pools", "nodes", "jobschedules", "jobs", "tasks", "users")
PASSWORD = "Conformance-Replay-1"     # the recordings never show a password: any the emulator accepts
SUBSCRIPTION = re.compile(r"(?i)/subscriptions/[^/]+/")


def expects_existing(status: int, code: str) -> bool:
    return 200 <= status < 300 or (status == 409 and not code.endswith(("Exists", "NotFound")))


def own_subscription(body: Any) -> Any:
    """``body`` with every subnetId in the emulator account's subscription: the recorded account's subscription
    is not the emulator's, so a subnet the service accepted names the emulator's subscription here."""
    text = json.dumps(body)
    if '"subnetId"' not in text:
        return body
    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: SUBSCRIPTION.sub(f"/subscriptions/{ACCOUNT_SUBSCRIPTION_ID}/", v)
                    if k == "subnetId" and isinstance(v, str) else walk(v) for k, v in value.items()}
        return [walk(v) for v in value] if isinstance(value, list) else value
    return walk(body)


def infer(recording: Recording) -> list[Precondition]:
    """The preconditions of ``recording``: what it names before (or without) adding it, outermost kinds first.
    An add the service answered 409 "...Exists" names one too: the resource was there already (made from the
    add's own body). A resource inside one the recording creates itself (a task of its own job) is none: what the
    recording does not show making (a task cut from a truncated collection) cannot be made before that job."""
    made: set[tuple[str, str]] = set()
    created: set[str] = set()                        # "kind/ident" of what the recording's own adds make
    needed: list[tuple[str, str, str]] = []          # kind, ident, the first entry's last path segment
    templates: dict[tuple[str, str], dict[str, Any]] = {}
    for entry in recording.entries:
        if entry.status == 409 and entry.error_code.endswith("Exists"):
            for resource in created_by(entry):
                if resource not in made and resource[0] in ("pools", "jobs", "jobschedules"):
                    made.add(resource)
                    templates[resource] = own_subscription(entry.request_body)
                    needed.append((*resource, "add"))
        named = resources_of(entry.path)
        node = node_of(entry.path)
        if node:
            named.append(("nodes", f"{node[0]}/{node[1]}"))
        for resource in named:
            if resource not in made:
                made.add(resource)
                inside_own = any(resource[1].startswith(f"{parent[1]}/") for parent in named
                                 if parent != resource and f"{parent[0]}/{parent[1]}" in created)
                if expects_existing(entry.status, entry.error_code) and not inside_own:
                    needed.append((*resource, segments(entry.path)[-1]))
        made.update(created_by(entry))
        created.update(f"{kind}/{ident}" for kind, ident in created_by(entry))
    needed.sort(key=lambda r: KINDS.index(r[0]))
    found = [from_add(kind, ident, templates[(kind, ident)]) if (kind, ident) in templates
             else build(recording, kind, ident, action) for kind, ident, action in needed]
    return [p for p in found if p is not None]


def from_add(kind: str, ident: str, body: dict[str, Any]) -> Precondition:
    nodes = int(body.get("targetDedicatedNodes") or 0) if kind == "pools" else 0
    return Precondition(kind, ident, body, nodes)


def build(recording: Recording, kind: str, ident: str, action: str) -> Precondition | None:
    then = STATE_BEFORE.get((kind, action))
    after = ((then[0], f"{Precondition(kind, ident, {}).collection}/{ident.split('/')[-1]}/{then[1]}", then[2]),) \
        if then else ()
    if kind == "nodes":      # a node is never added: it only may need a state
        pool, node = ident.split("/")
        return Precondition(kind, ident, {}, then=((then[0], f"/pools/{pool}/nodes/{node}/{then[1]}", then[2]),)) \
            if then else None
    if kind == "pools":
        return pool_precondition(recording, ident, autoscale=action == "evaluateautoscale")
    if kind == "jobs":
        return Precondition(kind, ident, {"id": ident, "poolInfo": pool_info(recording, ident)}, then=after)
    if kind == "tasks":
        return Precondition(kind, ident, {"id": ident.split("/")[1], "commandLine": "/bin/true"}, then=after)
    if kind == "users":
        return Precondition(kind, ident, {"name": ident.split("/")[2], "password": PASSWORD})
    shown = answers_about(recording, "jobschedules", ident)
    spec = shown[0].get("jobSpecification", {}) if shown else {}
    schedule = shown[0].get("schedule", {}) if shown else {}
    return Precondition(kind, ident, {"id": ident, "schedule": {k: v for k, v in schedule.items()
                                                                 if k in ("recurrenceInterval", "startWindow")}
                                      or {"recurrenceInterval": "P1D"},
                                      "jobSpecification": {"poolInfo": spec.get("poolInfo") or {"poolId": "pool_id"}}},
                        then=after)


def pool_precondition(recording: Recording, ident: str, autoscale: bool = False) -> Precondition:
    shown = answers_about(recording, "pools", ident)
    first = shown[0] if shown else {}
    body: dict[str, Any] = {"id": ident, "vmSize": "standard_d2_v2"}
    body.update({k: first[k] for k in POOL_KEYS if k in first})
    vmc = first.get("virtualMachineConfiguration") or {}
    image = vmc.get("imageReference") or node_image(recording, ident)
    body["virtualMachineConfiguration"] = ({"imageReference": image, "nodeAgentSKUId": vmc.get("nodeAgentSKUId")
                                            or IMAGE["nodeAgentSKUId"]} if image else dict(IMAGE))
    users = [{k: u[k] for k in ("name", "elevationLevel") if k in u} for u in first.get("userAccounts") or []]
    if users:     # the recording never shows a password: any the emulator accepts
        body["userAccounts"] = [{**u, "password": PASSWORD} for u in users]
    endpoints = (first.get("networkConfiguration") or {}).get("endpointConfiguration")
    if endpoints:
        body["networkConfiguration"] = {"endpointConfiguration": endpoints}
    nodes = max([node_count(recording, ident)] + [int(p.get("targetDedicatedNodes") or 0) for p in shown[:1]])
    if autoscale:      # a recording that evaluates a formula on a pool it did not make: an autoscale pool
        body.update({"enableAutoScale": True, "autoScaleFormula": first.get("autoScaleFormula") or
                     f"$TargetDedicatedNodes={nodes};", "autoScaleEvaluationInterval": "PT5M"})
    else:
        body["targetDedicatedNodes"] = nodes
    return Precondition("pools", ident, body, nodes)


def node_image(recording: Recording, pool: str) -> dict[str, Any] | None:
    for entry in recording.entries:
        if segments(entry.path)[:3] == ["pools", pool, "nodes"] and isinstance(entry.response_body, dict):
            for node in entry.response_body.get("value") or [entry.response_body]:
                image = (node.get("virtualMachineInfo") or {}).get("imageReference")
                if image:
                    return {k: v for k, v in image.items() if k != "exactVersion"}
    return None


def node_count(recording: Recording, pool: str) -> int:
    """The most nodes the recording lists at once for ``pool``, or names in its paths, whichever is more."""
    listed, named = 0, set()
    for entry in recording.entries:
        if segments(entry.path) == ["pools", pool, "nodes"] and isinstance(entry.response_body, dict):
            listed = max(listed, len(entry.response_body.get("value") or []))
        node = node_of(entry.path)
        if node and node[0] == pool:
            named.add(node[1])
    return max(listed, len(named))


def pool_info(recording: Recording, job: str) -> dict[str, Any]:
    """The job's poolInfo as a recorded answer shows it, else the pool its tasks ran on, else a pool the recording
    names, else a pool that does not exist (the job then just waits, as on the service)."""
    for shown in answers_about(recording, "jobs", job):
        if shown.get("poolInfo"):
            return dict(shown["poolInfo"])
    for entry in recording.entries:
        body = entry.response_body
        if segments(entry.path)[:3] == ["jobs", job, "tasks"] and isinstance(body, dict):
            for task in body.get("value") or [body]:
                pool = (task.get("nodeInfo") or {}).get("poolId")
                if pool:
                    return {"poolId": pool}
    pools = [r[1] for r in map(resource_of, (e.path for e in recording.entries)) if r and r[0] == "pools"]
    return {"poolId": pools[0] if pools else "conformance-no-pool"}


def make(raw: Any, precondition: Precondition, translate: Callable[[str], str] = str) -> None:
    """Create ``precondition`` in the emulator (``raw``: a recorded_client.Raw; ``translate``: a path with the
    emulator's node ids), wait for its nodes, then give it its state."""
    if precondition.kind != "nodes":
        answer = raw("POST", translate(precondition.collection), precondition.body)
        assert answer.status == 201, f"precondition {precondition.kind} {precondition.ident}: {answer}"
    if precondition.nodes:
        def idle() -> bool:
            nodes = raw("GET", f"/pools/{precondition.ident}/nodes").json.get("value", [])
            return len(nodes) >= precondition.nodes and all(n.get("state") == "idle" for n in nodes)
        wait_for(idle, what=f"{precondition.nodes} idle nodes in precondition pool {precondition.ident}")
    for method, path, body in precondition.then:
        answer = raw(method, translate(path), body)
        assert answer.status < 300, f"precondition state {method} {path}: {answer}"
