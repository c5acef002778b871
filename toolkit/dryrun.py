"""--dry_run of the scripts: the exact request bodies, as the SDK would send them, with secrets redacted.

The JSON is the Batch REST wire format (camelCase), which `az batch pool create --json-file` and
`az batch task create --json-file` accept unchanged.
"""

from __future__ import annotations

import json
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
