"""HTTP front end: parse the request, check SharedKey and api-version, dispatch, write the wire response.

Responses go out in one write with TCP_NODELAY set: a status line, headers and body sent
separately on a keep-alive connection meet Nagle's algorithm and the client's delayed ACK
(the body waits until the head is acknowledged) and cost ~40 ms each.
"""

from __future__ import annotations

import json
import socket
import struct
import sys
import time
import traceback
import uuid
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast
from urllib.parse import parse_qs, unquote, urlsplit

from toolkit.redaction import redact

from .. import faults
from ..service.errors import BatchServiceError, error_body, service_error
from ..service.state import Account, utcnow
from ..service.tokens import TokenSettings
from ..service.work import Runtime
from . import auth, files, identity, jobs, pools, schedules  # noqa: F401  (importing the route modules fills ROUTES)
from . import node_logs as node_log_routes  # noqa: F401  (importing it registers its route)
from . import node_users as node_user_routes  # noqa: F401  (importing it registers its routes)
from . import nodes as node_routes  # noqa: F401  (importing it registers its routes)
from .http import ROUTES, Request, Response, match
from .wire import rfc1123

# The largest request body the service takes: 413 RequestBodyTooLarge past it, with MaxLimit 1048576 (recorded:
# Azure/azure-sdk-assets java/sdk/batch/azure-compute-batch/.../TaskTests.failIfPoisonTaskTooLarge[1].json, a task
# collection of one task with 10,000 resource files). The SDK does not split such a request.
MAX_BODY_BYTES = 1024 * 1024


def dispatch(server: BatchHTTPServer, req: Request) -> Response:
    if identity.is_identity(req.raw_target):   # the emulator's token endpoint: its own check, no api-version
        return identity.answer(server.tokens, req)
    auth.verify_request(req.method, req.raw_target, req.headers, server.account.name, server.account_key,
                        server.tokens)
    if faults.is_control(req.raw_target):   # the emulator's own endpoint: signed, no api-version
        return Response(*faults.control(server.faults, req.method, req.raw_target, req.body))
    if not req.query.get("api-version"):
        raise service_error(400, "MissingRequiredQueryParameter", QueryParameterName="api-version")
    if len(req.body) > MAX_BODY_BYTES:
        raise service_error(413, "RequestBodyTooLarge", MaxLimit=MAX_BODY_BYTES)
    known_path = False
    for method, pattern, handler in ROUTES:
        params = match(pattern, req.segments)
        if params is None:
            continue
        known_path = True
        if method == req.method:
            req.params = params
            return handler(server, req)
    if known_path:
        raise service_error(405, "UnsupportedHttpVerb", Verb=req.method)
    raise service_error(400, "InvalidUri", Reason=f"No resource at /{'/'.join(req.segments)}")


class BatchHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], account: Account, account_key: str, runtime: Runtime,
                 verbose: bool = False, fault_rules: Iterable[faults.FaultRule] = (),
                 tokens: TokenSettings | None = None, scheme: str = "http") -> None:
        # runtime: the one way routes hand work to the task runner (service.work.Runtime).
        self.account, self.account_key, self.runtime, self.verbose = account, account_key, runtime, verbose
        self.tokens, self.scheme = tokens, scheme   # tokens None: SharedKey only, as before Entra ID
        self.faults = faults.Faults(fault_rules)
        super().__init__(address, Handler)


class Handler(BaseHTTPRequestHandler):
    server: BatchHTTPServer
    protocol_version = "HTTP/1.1"
    server_version = "BatchEmulator/1.0"

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        # The default logs every request; we log only with --verbose.
        pass

    def _handle(self) -> None:
        started = time.monotonic()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        parts = urlsplit(self.path)
        host = headers.get("host") or "{}:{}".format(*cast("tuple[str, int]", self.server.server_address)[:2])
        req = Request(self.command, self.path, [unquote(s) for s in parts.path.strip("/").split("/") if s],
                      {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()},
                      headers, body, f"{self.server.scheme}://{host}")
        request_id = str(uuid.uuid4())
        rule = self.server.faults.decide(self.command, self.path)
        response, how = faults.apply(rule, lambda: self._answer(req, request_id),
                                     lambda err, extra: self._refusal(err, req, request_id, extra))
        if response is None:   # how == "drop": reset, send nothing
            self._reset()
        else:
            # client-request-id comes back only when asked for: no recorded answer carries it unless the
            # request says return-client-request-id: true (REST reference; every recording asks for none).
            echo = headers.get("return-client-request-id", "").strip().lower() == "true"
            self._send(response, request_id, headers.get("client-request-id") if echo else None, cut=how == "cut")
        if self.server.verbose:
            outcome = "dropped" if response is None else response.status
            shown = f" [fault {rule.id}: {rule.kind} {rule.when}]" if rule else ""
            print(f"{self.command} {redact(self.path)} -> {outcome}{shown} "
                  f"({(time.monotonic() - started) * 1000:.1f} ms)", file=sys.stderr, flush=True)

    def _answer(self, req: Request, request_id: str) -> Response:
        try:
            return dispatch(self.server, req)
        except BatchServiceError as err:
            return self._refusal(err, req, request_id, dict(err.headers))
        except Exception as exc:   # a bug; still answer with the service's error shape
            print(f"batch_emulator: internal error on {self.command} {redact(self.path)}: {exc!r}", file=sys.stderr)
            traceback.print_exc(file=sys.stderr)
            internal = service_error(500, "InternalError")
            return Response(500, error_body(internal, req.base, request_id))

    def _refusal(self, err: BatchServiceError, req: Request, request_id: str, headers: dict[str, str]) -> Response:
        """The one rendering of a refused request (a handler's error or an injected fault): the error's own
        status, the service's error body (none for HEAD), extra headers."""
        return Response(err.status, None if self.command == "HEAD" else error_body(err, req.base, request_id),
                        headers)

    def _reset(self) -> None:
        """Close the connection abruptly, as a crashed server or proxy does: with SO_LINGER 0 the
        kernel sends RST, not FIN, once the handler's streams let go of the socket (in finish())."""
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()

    def _send(self, response: Response, request_id: str, client_request_id: str | None, cut: bool = False) -> None:
        body = response.body
        content_type: str | None
        if isinstance(body, dict):
            payload, content_type = json.dumps(body).encode(), response.content_type
        elif isinstance(body, (bytes, bytearray)):
            payload, content_type = bytes(body), response.content_type
        else:   # HEAD of a file still names its type; other empty bodies have none
            payload = b""
            content_type = response.content_type if response.status == 200 and response.headers else None
        if response.status == 204:
            payload = b""
        reason = self.responses.get(response.status, ("",))[0]
        lines = [f"HTTP/1.1 {response.status} {reason}",
                 f"Date: {rfc1123(utcnow())}", f"Server: {self.server_version}",
                 f"request-id: {request_id}", "DataServiceVersion: 3.0"]
        if client_request_id:
            lines.append(f"client-request-id: {client_request_id}")
        if content_type and (payload or self.command == "HEAD"):
            lines.append(f"Content-Type: {content_type}")
        lines += [f"{k}: {v}" for k, v in response.headers.items() if k.lower() != "content-length"]
        length = response.headers.get("Content-Length", len(payload)) if self.command == "HEAD" else len(payload)
        if response.status != 204:
            lines.append(f"Content-Length: {length}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")
        data = head + (b"" if self.command == "HEAD" else payload)
        self.wfile.write(faults.cut(data, len(head)) if cut else data)
        self.wfile.flush()
        if cut:
            self._reset()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle
