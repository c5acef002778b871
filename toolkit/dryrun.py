"""--dry_run of the scripts: the exact request bodies, as the SDK would send them, with secrets redacted.

The JSON is the Batch REST wire format (camelCase), which `az batch pool create --json-file` and
`az batch task create --json-file` accept unchanged. `--dry_run DIR` also writes each body to its own file
in DIR, whole: a body that holds a secret (a task's upload SAS) is written readable by you only (0600),
and the line that names the file says so.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from toolkit.redaction import redact


def wire_json(model: Any) -> str:
    """A request model as the SDK serialises it (its public as_dict: wire names, durations and times as the
    service's strings, read-only fields left out), SAS signatures redacted."""
    from azure.core.serialization import AzureJSONEncoder  # any value as_dict leaves as a Python object

    return redact(json.dumps(model.as_dict(exclude_readonly=True), cls=AzureJSONEncoder, indent=2))


def show_request(method: str, url: str, model: Any = None) -> None:
    """Print one request a dry run would send: its method and URL, then its JSON body, if any."""
    print(f"Dry run: would send {method} {redact(url)}" + (" with this body:" if model is not None else ""))
    if model is not None:
        print(wire_json(model))


def add_dry_run_option(parser: argparse.ArgumentParser, what: str) -> None:
    """--dry_run [DIR]: alone, print the requests; with DIR, also write each body to its own file there."""
    parser.add_argument("--dry_run", nargs="?", const="", metavar="DIR",
                        help=f"make the checks (reads only) and print the requests that would be sent; {what}; "
                             "with DIR, also write each request body to its own JSON file in DIR (for az ... "
                             "--json-file)")


def write_body(directory: str, name: str, model: Any, secret: bool = False) -> Path:
    """Write one request body, unredacted, to DIR/NAME (0600: a body may hold a SAS); print which file."""
    from azure.core.serialization import AzureJSONEncoder

    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)   # also when an earlier run's file was there
    with os.fdopen(fd, "w") as out:
        json.dump(model.as_dict(exclude_readonly=True), out, cls=AzureJSONEncoder, indent=2)
        out.write("\n")
    note = " (it holds a secret, the SAS of the uploads: readable by you only; delete it when done)" if secret else ""
    print(f"Wrote {path}{note}")
    return path
