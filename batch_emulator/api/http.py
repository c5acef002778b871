"""The HTTP layer's vocabulary: Request, Response, the route table and the answers every route builds.

Route modules (pools.py, jobs.py, files.py) register handlers with ``@route(METHOD, pattern)``;
server.py matches a request against ROUTES. Handlers receive (server, req) and return a Response.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar
from urllib.parse import quote

from ..service.conditions import Conditions
from ..service.errors import service_error
from ..service.state import Account, utcnow
from ..service.work import Runtime
from . import odata
from .wire import rfc1123

JSON_TYPE = "application/json;odata=minimalmetadata"
IdentifiedT = TypeVar("IdentifiedT", bound="Identified")


class Server(Protocol):
    """What a route handler may use of the HTTP server (api/server.py's BatchHTTPServer)."""
    account: Account
    account_key: str
    runtime: Runtime     # the one way to hand work to the task runner
    verbose: bool


@dataclass
class Request:
    method: str
    raw_target: str
    segments: list[str]         # decoded path segments
    query: dict[str, str]       # first value of each parameter, decoded
    headers: dict[str, str]     # lowercased names
    body: bytes
    base: str                   # http://host:port as the client reached us
    params: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        if not self.body:
            return {}
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise service_error(400, "InvalidRequestBody", Reason=f"The body is not valid JSON: {exc}") from None

    def flag(self, name: str) -> bool:
        return str(self.query.get(name, "")).lower() == "true"


@dataclass
class Response:
    status: int
    body: object = None     # dict -> JSON, bytes -> raw, None -> empty
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = JSON_TYPE


def entity(obj: dict[str, Any], etag: str | None = None, last_modified: datetime | None = None,
           metadata: str | None = None, base: str | None = None) -> Response:
    body = dict(obj)
    if metadata and base:
        body = {"odata.metadata": f"{base}/$metadata#{metadata}", **body}
    headers: dict[str, str] = {}
    if etag:
        headers["ETag"] = etag
    if last_modified:
        headers["Last-Modified"] = rfc1123(last_modified)
    return Response(200, body, headers)


def element(req: Request, body: dict[str, Any], metadata: str, etag: str | None,
            last_modified: datetime | None) -> Response:
    """Answer to a GET of one pool, node, job or task: the properties $select asks for, as in a listing."""
    return entity(odata.select_properties(body, req.query.get("$select")), etag, last_modified, metadata, req.base)


def written(status: int, req: Request, path: str, etag: str | None = None, last_modified: datetime | None = None,
            body: dict[str, Any] | None = None) -> Response:
    """Response of a create, update or action: DataServiceId names the resource (an action: the action's URL),
    and a 201 has Location too, as on the service."""
    headers = {"DataServiceId": f"{req.base}{path}"}
    if status == 201:
        headers["Location"] = headers["DataServiceId"]
    if etag:
        headers["ETag"] = etag
    headers["Last-Modified"] = rfc1123(last_modified or utcnow())
    return Response(status, body, headers)


def conditions(req: Request) -> Conditions:
    """The request's precondition headers, for the service to check against the object it changes."""
    return Conditions.from_headers(req.headers)


class Identified(Protocol):
    id: str


def by_id(items: Iterable[IdentifiedT]) -> list[IdentifiedT]:
    """Pools or jobs in the order the service lists them: by id, case aside (ids are unique case aside)."""
    return sorted(items, key=lambda item: item.id.lower())


def listing(req: Request, items: list[dict[str, Any]], metadata: str, filter_props: tuple[str, ...]) -> Response:
    """Filter, $select and page a list the way the service does."""
    predicate = odata.compile_filter(req.query.get("$filter"), filter_props)
    chosen = [odata.select_properties(i, req.query.get("$select")) for i in items if predicate(i)]
    page, token = odata.page(chosen, req.query)
    body: dict[str, Any] = {"odata.metadata": f"{req.base}/$metadata#{metadata}", "value": page}
    if token:
        # As the service writes it: api-version first, "$" left as is
        # (...pools?api-version=2024-07-01.20.0&maxresults=1&$skiptoken=...).
        kept = ("api-version", "$filter", "$select", "$expand", "recursive")
        keep: dict[str, str | int] = {k: req.query[k] for k in kept if req.query.get(k)}
        keep.update({"maxresults": odata.parse_maxresults(req.query), "$skiptoken": token})
        path = "/" + "/".join(quote(s, safe="") for s in req.segments)
        query = "&".join(f"{quote(k, safe='$')}={quote(str(v), safe='')}" for k, v in keep.items())
        body["odata.nextLink"] = f"{req.base}{path}?{query}"
    return Response(200, body)


# ---- routing ----

RouteHandler = Callable[[Server, "Request"], "Response"]
ROUTES: list[tuple[str, list[str], RouteHandler]] = []   # "{name}" matches one segment, "{name*}" the rest


def route(method: str, pattern: str) -> Callable[[RouteHandler], RouteHandler]:
    def register(func: RouteHandler) -> RouteHandler:
        ROUTES.append((method, pattern.strip("/").split("/"), func))
        return func
    return register


def match(pattern: list[str], segments: list[str]) -> dict[str, str] | None:
    """The parameters of ``segments`` under route ``pattern``, or None if it does not match."""
    params: dict[str, str] = {}
    for i, part in enumerate(pattern):
        if part.endswith("*}"):
            if i >= len(segments):
                return None
            params[part[1:-2]] = "/".join(segments[i:])
            return params
        if i >= len(segments):
            return None
        if part.startswith("{"):
            params[part[1:-1]] = segments[i]
        elif part != segments[i].lower():
            return None
    return params if len(pattern) == len(segments) else None
