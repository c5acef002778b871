"""Command line: python -m batch_emulator [--host H] [--port P] [--account-name N] [--account-key K]
[--root DIR] [--max-nodes N] [--dedicated-core-quota N] [--low-priority-core-quota N]
[--time-scale X] [--supported-images FILE] [--verbose] [--fault SPEC ...]
[--isolation auto|none|netns] [--node-packages DIR] [--node-image DIR] [--node-share DIR]...
[--allowed-auth sharedkey|aad|both] [--identity-header VALUE] [--token-lifetime SECONDS]
[--tls-cert PEM --tls-key PEM]

Prints exactly one line when ready:
"Batch emulator listening on http://HOST:PORT (account NAME) isolation MODE" (https:// with --tls-cert).
SIGINT/SIGTERM stop it cleanly: every process it started is killed (with --isolation netns:
every node, its layer, namespace and route are removed), exit status 0.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import io
import json
import os
import shutil
import signal
import ssl
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any, cast

from . import DEFAULT_ACCOUNT_KEY, DEFAULT_ACCOUNT_NAME, DEFAULT_IDENTITY_HEADER, faults
from .api.server import BatchHTTPServer
from .runtime import isolation
from .runtime.executor import Executor
from .service.state import Account
from .service.tokens import DEFAULT_TOKEN_LIFETIME, AllowedAuth, TokenSettings, derive_secret


def _fault_spec(text: str) -> faults.FaultRule:
    try:
        return faults.parse_spec(text)
    except faults.FaultError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _supported_images(path: str) -> list[dict[str, Any]]:
    """The images of --supported-images: a JSON list of objects, each with the fields clients match on."""
    try:
        with open(path) as file:
            images = json.load(file)
    except (OSError, ValueError) as exc:
        raise argparse.ArgumentTypeError(f"cannot read {path}: {exc}") from None
    required = {"nodeAgentSKUId", "imageReference", "osType", "verificationType"}
    if not isinstance(images, list) or not all(isinstance(i, dict) and required <= set(i) for i in images):
        raise argparse.ArgumentTypeError(f"{path} must hold a JSON list of images, "
                                         f"each with {', '.join(sorted(required))}")
    return images


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m batch_emulator", description="Local Azure Batch service emulator.",
                                     epilog=faults.SPEC_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port (default 0: pick a free one)")
    parser.add_argument("--account-name", default=DEFAULT_ACCOUNT_NAME)
    parser.add_argument("--account-key", default=DEFAULT_ACCOUNT_KEY, help="base64 SharedKey (default: the dev key)")
    parser.add_argument("--root", help="directory for node directories (default: a temporary one, removed at exit)")
    parser.add_argument("--max-nodes", type=int, default=8,
                        help="most nodes an autoscale pool gets, whatever its formula asks (default 8)")
    parser.add_argument("--dedicated-core-quota", type=int, metavar="N",
                        help="the account's dedicated core quota, over all pools: a resize beyond it allocates the "
                             "nodes that fit and reports AccountCoreQuotaReached in the pool's resizeErrors; a "
                             "node's cores come from its VM size name (standard_d2s_v5: 2) (default: no quota)")
    parser.add_argument("--low-priority-core-quota", type=int, metavar="N",
                        help="the same for low-priority (Spot) nodes: AccountLowPriorityCoreQuotaReached "
                             "(default: no quota)")
    parser.add_argument("--time-scale", type=float, default=300.0, metavar="X",
                        help="run the autoscale clock X times faster than the service's: a 5-minute evaluation "
                             "interval takes 5 min / X, samples come every 30 s / X (default 300)")
    parser.add_argument("--supported-images", metavar="FILE", type=_supported_images,
                        help="a JSON list of images (as GET /supportedimages returns them) to serve instead of the "
                             "built-in current Ubuntu LTS images, e.g. your account's list or a retired image")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    parser.add_argument("--isolation", choices=isolation.MODES, default="auto",
                        help="none: nodes are this machine, processes run as you; netns (root): each node a "
                             "network namespace with its own address, hostname, sshd and disk, as a Batch "
                             "Linux node; auto (default): netns when it can run here, else none")
    parser.add_argument("--node-packages", metavar="DIR", default=isolation.NODE_PACKAGES,
                        help="netns: the wheelhouse pip on the nodes installs from (they have no route out; "
                             f"default {isolation.NODE_PACKAGES}, filled by tools/prefetch_node_packages.sh)")
    parser.add_argument("--node-image", metavar="DIR", default=str(isolation.NODE_IMAGE),
                        help="netns: the root filesystem every node starts from, on a private layer of its own "
                             f"(default {isolation.NODE_IMAGE}, made by tools/build_node_image.sh)")
    parser.add_argument("--node-share", metavar="DIR", action="append", default=[],
                        help="netns: a host directory every node sees read-only at the same path, e.g. the "
                             "repository the job preparation clones (repeatable)")
    parser.add_argument("--fault", action="append", default=[], metavar="SPEC", type=_fault_spec,
                        help="inject faults into matching requests (repeatable; syntax below)")
    parser.add_argument("--allowed-auth", type=AllowedAuth, choices=list(AllowedAuth), default=AllowedAuth.BOTH,
                        help="what the account accepts: sharedkey, aad (Microsoft Entra ID tokens only, like an "
                             "account with local authentication disabled) or both (default)")
    parser.add_argument("--identity-header", default=DEFAULT_IDENTITY_HEADER, metavar="VALUE",
                        help="the X-IDENTITY-HEADER its managed-identity endpoint expects (default: the "
                             "development value, see README.md)")
    parser.add_argument("--token-lifetime", type=float, default=DEFAULT_TOKEN_LIFETIME, metavar="SECONDS",
                        help=f"lifetime of the tokens it issues (default {DEFAULT_TOKEN_LIFETIME:.0f})")
    parser.add_argument("--tls-cert", metavar="PEM", help="serve HTTPS with this certificate (needs --tls-key); "
                                                           "clients refuse Entra ID tokens over plain HTTP")
    parser.add_argument("--tls-key", metavar="PEM", help="the private key of --tls-cert")
    args = parser.parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        parser.error("--tls-cert and --tls-key go together")
    if args.token_lifetime <= 0:
        parser.error("--token-lifetime must be > 0")
    try:
        base64.b64decode(args.account_key, validate=True)
    except (binascii.Error, ValueError):
        parser.error("--account-key must be base64")
    if args.max_nodes < 0:
        parser.error("--max-nodes must be >= 0")
    for option in ("dedicated_core_quota", "low_priority_core_quota"):
        if (getattr(args, option) or 0) < 0:
            parser.error(f"--{option.replace('_', '-')} must be >= 0")
    if not 1 <= args.time_scale <= 3600:
        parser.error("--time-scale must be between 1 (real time) and 3600")
    return args


def _netns_root(root: str | None) -> str | None:
    """Why ``root`` cannot hold isolated nodes' directories (None: it can). Each node has a private /tmp,
    and the task's user (_azbatch) must reach its directories."""
    if root is None:
        return None
    real = os.path.realpath(root)
    if real == "/tmp" or real.startswith("/tmp/"):
        return f"--root {root} is under /tmp, which is private to each isolated node: choose another directory"
    parent = os.path.dirname(real)
    while parent != "/":
        if os.path.isdir(parent) and not os.stat(parent).st_mode & 0o001:
            return f"--root {root}: {parent} is not searchable by other users (chmod o+x {parent})"
        parent = os.path.dirname(parent)
    return None


def _isolation_mode(args: argparse.Namespace) -> str | None:
    """The isolation mode to run in; None (said on stderr) when the one asked for cannot run here."""
    try:
        mode, why_not = isolation.choose_mode(args.isolation, Path(args.node_image))
    except RuntimeError as exc:
        print(f"batch emulator: {exc}", file=sys.stderr)
        return None
    root_problem = _netns_root(args.root) if mode == "netns" else None
    if root_problem:
        if args.isolation == "netns":
            print(f"batch emulator: {root_problem}", file=sys.stderr)
            return None
        mode, why_not = "none", root_problem
    if why_not and args.isolation == "auto":
        print(f"batch emulator: isolation none ({why_not})", file=sys.stderr, flush=True)
    return mode


def _node_root(root: str | None, mode: str) -> str:
    """The directory that holds the node directories: ``root``, or a new temporary one when it is None."""
    # Not under /tmp in netns mode: each node has its own /tmp.
    temp_parent = "/var/tmp" if mode == "netns" else None
    path = os.path.abspath(tempfile.mkdtemp(prefix="batch-emulator-", dir=temp_parent) if root is None else root)
    os.makedirs(os.path.join(path, "nodes"), exist_ok=True)
    return path


def _isolated_nodes(root: str, args: argparse.Namespace) -> isolation.NetnsNodes | None:
    """The isolated nodes' manager; None (said on stderr) when they cannot be set up."""
    for path in (root, os.path.join(root, "nodes")):
        os.chmod(path, 0o755)   # the task's user walks through to its directories
    try:
        return isolation.NetnsNodes(os.path.abspath(args.node_packages), Path(args.node_image), args.node_share)
    except (OSError, RuntimeError) as exc:
        print(f"batch emulator: cannot set up isolated nodes: {exc}", file=sys.stderr)
        return None


def _server(args: argparse.Namespace, account: Account, executor: Executor) -> BatchHTTPServer:
    """The HTTP(S) server, bound; the account's url is where it listens."""
    tokens = TokenSettings(allowed_auth=args.allowed_auth, secret=derive_secret(args.account_key),
                           identity_header=args.identity_header, token_lifetime=args.token_lifetime)
    scheme = "https" if args.tls_cert else "http"
    server = BatchHTTPServer((args.host, args.port), account, args.account_key, executor, args.verbose, args.fault,
                             tokens=tokens, scheme=scheme)
    if args.tls_cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.tls_cert, args.tls_key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    host, port = cast("tuple[str, int]", server.server_address)[:2]
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    account.url = f"{scheme}://{shown_host}:{port}"
    return server


def _start(server: BatchHTTPServer, executor: Executor, ready_line: str) -> None:
    """Stop serving on SIGINT or SIGTERM, start the runtime and say ``ready_line``."""

    def stop(_signum: int, _frame: object) -> None:
        # shutdown() waits for serve_forever to return, so it must not run on the serving thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    executor.start()
    # tools/local_stack.py parses the part up to the closing parenthesis.
    print(ready_line, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    # Its log lines reach a file (tools/local_stack.py) as they happen, without PYTHONUNBUFFERED, which
    # the tasks would inherit.
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)
    mode = _isolation_mode(args)
    if mode is None:
        return 2
    temporary = args.root is None
    root = _node_root(args.root, mode)
    nodes = None
    if mode == "netns":
        nodes = _isolated_nodes(root, args)
        if nodes is None:
            if temporary:
                shutil.rmtree(root, ignore_errors=True)
            return 1
    account = Account(name=args.account_name, root=root, max_nodes=args.max_nodes, time_scale=args.time_scale,
                      dedicated_core_quota=args.dedicated_core_quota,
                      low_priority_core_quota=args.low_priority_core_quota, supported_images=args.supported_images)
    executor = Executor(account, verbose=args.verbose, nodes=nodes)   # the runtime: service.work.Runtime for the routes
    server = _server(args, account, executor)
    _start(server, executor, f"Batch emulator listening on {account.url} (account {account.name}) isolation {mode}")
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        executor.stop()
        server.server_close()
        if temporary:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
