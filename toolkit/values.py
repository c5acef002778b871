"""Checks of single setting values (endpoint, keys, the container URL and its SAS, the program path):
each records what is wrong in `problems` (variable -> message) instead of raising.

Used by toolkit/settings.py; depends on nothing else of the repository.
"""

import base64
import binascii
import datetime
import ipaddress
import re
from urllib.parse import parse_qs, urlsplit

LOOPBACK_HOSTS = {"localhost", "::1"}


def is_vm_size_name(value: str) -> bool:
    """A VM size name as Batch spells them (standard_d2s_v5): letters, digits and underscores."""
    return re.fullmatch(r"[A-Za-z0-9_]+", value) is not None


def check_program(program: str, program_args: str, problems: dict[str, str]) -> None:
    """PROGRAM goes inside "..." and PROGRAM_ARGS inside '...' of the default START_COMMAND."""
    parts = program.split("/")
    if program.startswith("/") or ".." in parts or any(c in program for c in "\"'`$\\\t\n ") or not program:
        problems["PROGRAM"] = f"is {program!r}, not a relative path inside the repository without quotes, '$' or spaces"
    if any(c in program_args for c in "'\n\r"):
        problems["PROGRAM_ARGS"] = "contains a single quote or a newline"


def check_endpoint(url: str, problems: dict[str, str]) -> None:
    if not url:
        return
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number)
    except ValueError:
        problems["AZURE_BATCH_ENDPOINT"] = f"is {url!r}, whose port is not a number"
        return
    if parts.scheme not in ("http", "https") or not parts.hostname:
        problems["AZURE_BATCH_ENDPOINT"] = f"is {url!r}, not a URL with a scheme (https://...)"
    elif parts.scheme == "http" and not is_loopback(parts.hostname):
        problems["AZURE_BATCH_ENDPOINT"] = "uses http:// for a remote host; Azure Batch needs https://"


def is_loopback(host: str) -> bool:
    return host in LOOPBACK_HOSTS or host.startswith("127.")


def is_ip_or_localhost(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return host == "localhost"


def container_parts(url: str) -> tuple[str, str] | None:
    """(storage account, container) of a container URL, or None when it is not one.

    On Azure the account is the host's first label; emulators (an IP address or
    localhost) put it first in the path: http://127.0.0.1:10000/ACCOUNT/CONTAINER.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    segments = [segment for segment in parts.path.split("/") if segment]
    if is_ip_or_localhost(parts.hostname):
        return (segments[0], segments[1]) if len(segments) == 2 else None
    return (parts.hostname.split(".")[0], segments[0]) if len(segments) == 1 else None


def check_key(variable: str, key: str, problems: dict[str, str]) -> None:
    if not key:
        return
    try:
        if not base64.b64decode(key, validate=True):
            raise binascii.Error("empty")
    except (binascii.Error, ValueError):
        problems[variable] = "is not a base64 account key"


def split_container(url: str, token: str, problems: dict[str, str]) -> dict[str, str]:
    """The container URL without its query, and the SAS from the query or from the token variable."""
    parts = urlsplit(url)
    if url and container_parts(url) is None:
        problems["BLOB_CONTAINER_URL"] = "is not a container URL (https://ACCOUNT.blob.core.windows.net/CONTAINER)"
    sas = parts.query or token.lstrip("?")
    if url and sas and "sig" not in parse_qs(sas):
        variable = "BLOB_CONTAINER_URL" if parts.query else "AZURE_STORAGE_SAS_TOKEN"
        problems.setdefault(variable, "holds a SAS with no signature field")
    return {"url": parts._replace(query="", fragment="").geturl() if url else "", "sas_token": sas}


def sas_token_expiry(sas_token: str) -> datetime.datetime | None:
    """When a SAS expires (its `se` field), or None when it does not say."""
    expiry = parse_qs(sas_token).get("se", [""])[0]
    try:
        moment = datetime.datetime.fromisoformat(expiry.replace("Z", "+00:00"))
    except ValueError:
        return None
    # A SAS time without an offset (e.g. the date-only se=2030-01-01 the Azure CLI accepts) is UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.timezone.utc)


def sas_token_permissions(sas_token: str) -> str:
    """A SAS's permission letters (its `sp` field), e.g. 'racwl'."""
    return parse_qs(sas_token).get("sp", [""])[0]
