"""--dry_run of the scripts: the exact request bodies, as the SDK would send them, with secrets redacted.

The JSON is the Batch REST wire format (camelCase), which `az batch pool create --json-file` and
`az batch task create --json-file` accept unchanged. `--dry_run DIR` also writes each body to its own file
in DIR, whole: every file is readable by you only (0600), and the line that names a file that holds a secret
(a task's upload SAS, a job's link to the program) says so. A file appears whole or not at all (written
aside, then renamed into place), so a run that dies never leaves half a body for az to send.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toolkit.redaction import redact

if TYPE_CHECKING:
    from azure.batch import models

# What a task body's secret is (send_task.py's bodies).
UPLOADS_SAS = "the SAS of the uploads"


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


def write_body(directory: str, name: str, model: Any, secret: bool = False, holds: str = UPLOADS_SAS) -> Path:
    """Write one request body, unredacted, to DIR/NAME (0600: a body may hold a SAS); print which file, and
    with `secret` what it `holds`. Written to a temporary NAME.*.partial in DIR, then renamed over NAME
    (atomic): an earlier run's file is replaced whole, or kept if this write fails."""
    from azure.core.serialization import AzureJSONEncoder

    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    fd, partial = tempfile.mkstemp(prefix=f"{name}.", suffix=".partial", dir=folder)  # made 0600
    try:
        with os.fdopen(fd, "w") as out:
            json.dump(model.as_dict(exclude_readonly=True), out, cls=AzureJSONEncoder, indent=2)
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())  # the data is on disk before the name points at it
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(partial)
        raise
    note = f" (it holds a secret, {holds}: readable by you only; delete it when done)" if secret else ""
    print(f"Wrote {path}{note}")
    return path


def autoscaled_at_creation(pool: models.BatchPoolCreateOptions, formula: str) -> models.BatchPoolCreateOptions:
    """`pool` (an autoscale pool's create body) with `formula` as its autoscale formula from the start: the
    one body that makes, with `az batch pool create --json-file`, the pool that create_pool_job.py makes in
    three requests (create holding at 0 nodes, evaluate, enable). Its evaluation interval is kept; it has no
    target counts (the service refuses them with enableAutoScale)."""
    body = copy.deepcopy(pool)   # the caller's model is left as it was
    if not body.enable_auto_scale or body.target_dedicated_nodes is not None \
            or body.target_low_priority_nodes is not None:
        raise ValueError("an autoscale pool's body without target counts was expected")
    body.auto_scale_formula = formula
    return body
