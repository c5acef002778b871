"""What every script does the same way: its parser, id checks, and `run()`, which reads the settings
once and is the one place that turns errors into a one-line message and an exit code.

The exit codes of every script are toolkit.errors.ExitStatus.

The azure packages are imported inside functions so that `--help` stays fast.
"""

from __future__ import annotations

import argparse
import difflib
import errno
import json
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from toolkit.batch import service_message
from toolkit.credentials import KEYS_REFUSED, NO_CREDENTIAL, TOKEN_REJECTED, SignInConfigError
from toolkit.envfile import local_stack_marker
from toolkit.errors import ExitStatus, ToolkitError
from toolkit.redaction import redact
from toolkit.settings import ENV_FILE_VARIABLE, SCRIPTS_DIR, ConfigError, Settings, read_settings
from toolkit.values import is_vm_size_name

if TYPE_CHECKING:
    from azure.core.exceptions import ClientAuthenticationError, HttpResponseError

# Pool, job and task ids: letters, digits, hyphens and underscores, at most 64 characters
# (the `id` of https://learn.microsoft.com/python/api/azure-batch/azure.batch.models.batchpool).
MAX_ID_LENGTH = 64
_ID_CHARACTERS = re.compile(r"[A-Za-z0-9_-]")

SETTINGS_NOTE = (f"Settings (account, storage, pool, task) come from the environment and from .env\n"
                 f"next to the scripts, or from the file {ENV_FILE_VARIABLE} names instead\n"
                 f"(every variable is described in .env.example).")


def make_parser(script: str, description: str, epilog: str | None = None) -> argparse.ArgumentParser:
    """The parser of a script, whose usage errors are one line on stderr (`Error: ... (see python3 SCRIPT
    --help)`) and exit code 2, like every other error. The description and epilog are printed as written
    (hand-wrapped), so that a command in them is never broken at a hyphen."""
    parser = argparse.ArgumentParser(prog=script, description=f"{description}\n\n{SETTINGS_NOTE}", epilog=epilog,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parsed: list[str] = []  # the tokens of the current parse, to name a mistyped option whatever argparse reports
    parse_known_args = parser.parse_known_args

    def remember_and_parse(args: Sequence[str] | None = None,
                           namespace: argparse.Namespace | None = None) -> tuple[argparse.Namespace, list[str]]:
        parsed[:] = sys.argv[1:] if args is None else list(args)
        return parse_known_args(args, namespace)

    def one_line_error(message: str) -> None:
        mistyped = [suggestion for token in parsed if (suggestion := unknown_option(parser, token))]
        if mistyped:  # e.g. --pool-id: argparse would otherwise report --pool_id missing, not the typo
            message = f"unrecognized arguments: {', '.join(mistyped)}"
        print(f"Error: {message} (see python3 {script} --help)", file=sys.stderr)
        sys.exit(ExitStatus.USAGE)

    parser.parse_known_args = remember_and_parse  # type: ignore[method-assign, assignment]
    parser.error = one_line_error  # type: ignore[method-assign, assignment]
    return parser


def unknown_option(parser: argparse.ArgumentParser, token: str) -> str:
    """'' for anything but an option the parser does not know; else the option, with the closest known one
    (the Azure CLI's --pool-id for --pool_id): '--pool-id (did you mean --pool_id?)'."""
    if not token.startswith("--") or token == "--":
        return ""
    name = token.split("=", 1)[0]
    known = [option for option in parser._option_string_actions if option.startswith("--")]
    if any(option.startswith(name) for option in known):  # an option, or an abbreviation argparse accepts
        return ""
    close = difflib.get_close_matches("--" + name[2:].replace("-", "_"), known, n=1, cutoff=0.75)
    return f"{name} (did you mean {close[0]}?)" if close else name


def check_id(option: str, value: str) -> str:
    """Check a pool, job or task id against the service's rules before any request."""
    if not value:
        raise ToolkitError(f"{option} is empty; give an id of 1 to {MAX_ID_LENGTH} characters.", ExitStatus.USAGE)
    if len(value) > MAX_ID_LENGTH:
        raise ToolkitError(f"{option} is {len(value)} characters long; ids have at most {MAX_ID_LENGTH}.",
                           ExitStatus.USAGE)
    bad = sorted({c for c in value if not _ID_CHARACTERS.match(c)})
    if bad:
        raise ToolkitError(f"{option} {value!r} contains {''.join(bad)!r}; ids use only letters, digits, '-' and '_'.",
                           ExitStatus.USAGE)
    return value


def check_vm_size(option: str, value: str) -> str:
    """Check a VM size name before any request: an empty one would fall back to the default only after
    a request, and one with spaces would be sent to the service as it is."""
    if not is_vm_size_name(value):
        raise ToolkitError(f"{option} is {value!r}, not a VM size name: give one like standard_d2s_v5 (letters, "
                           "digits and '_'; az batch location list-skus --location LOCATION lists them).",
                           ExitStatus.USAGE)
    return value


def sign_in_message(err: ClientAuthenticationError) -> str:
    """One line for a failed sign-in: the credential found none (no response), the service refused the
    scheme or the key sent (SharedKey), or it refused the Entra ID token (with the service's detail,
    which names no secret)."""
    if err.response is None:  # raised by the credential before any request
        return NO_CREDENTIAL
    request = getattr(err.response, "request", None)
    scheme = str(getattr(request, "headers", {}).get("Authorization") or "").partition(" ")[0]
    if scheme == "SharedKey":  # a bad signature is a 403 (HttpResponseError); a 401 refuses keys as such
        return KEYS_REFUSED
    detail = error_detail(err, "AuthenticationErrorDetail")
    return TOKEN_REJECTED.format(detail=f": {detail[:200]}" if detail else "")


def error_detail(err: HttpResponseError, key: str) -> str:
    """The first line of one of the service's error details (the "values" of its JSON error body), or ''.
    Read from the body: azure-core raises a 401 before the SDK parses it into a model."""
    try:
        body = json.loads(err.response.text()) if err.response is not None else {}
    except (ValueError, UnicodeDecodeError):
        return ""
    for item in body.get("values") or [] if isinstance(body, dict) else []:
        if isinstance(item, dict) and item.get("key") == key and item.get("value"):
            return str(item["value"]).strip().splitlines()[0]
    return ""


def run(body: Callable[[Settings], int]) -> int:
    """Run a script's body with the settings, read once here, and turn every expected failure into one line
    on stderr and an exit code. The same settings redact the line (the configured keys) and fill in its
    `az` hints (the configured account and resource group)."""
    settings = read_settings()  # never raises: the body checks what it needs (toolkit.settings.load_settings)
    try:
        from azure.core.exceptions import (
            ClientAuthenticationError,
            HttpResponseError,
            ServiceRequestError,
            ServiceResponseError,
        )
    except ImportError as err:
        # Most often the script was run with the system's python3 rather than the project's .venv.
        return _fail(f"The Python package {err.name} is missing: use .venv/bin/python (make setup makes it) "
                     "or pip install -r requirements.txt", ExitStatus.USAGE, settings)
    except KeyboardInterrupt:
        return _fail("Interrupted.", ExitStatus.INTERRUPTED, settings)
    try:
        return body(settings)
    except ConfigError as err:
        return _fail(f"Configuration error: {err}", ExitStatus.USAGE, settings)
    except ToolkitError as err:
        return _fail(str(err), err.exit_code, settings)
    except SignInConfigError as err:
        return _fail(str(err), ExitStatus.USAGE, settings)
    except ClientAuthenticationError as err:  # before HttpResponseError, its base class
        return _fail(sign_in_message(err), ExitStatus.FAILED, settings)
    except (ServiceRequestError, ServiceResponseError) as err:
        return _fail(unreachable_message(err, settings), ExitStatus.FAILED, settings)
    except HttpResponseError as err:
        if err.status_code is None:  # the connection broke while the answer was being read
            return _fail("The connection to the service broke while reading its answer; run the command again "
                         "(completed downloads are kept).", ExitStatus.FAILED, settings)
        return _fail(f"The service refused the request: {service_message(err)}", ExitStatus.FAILED, settings)
    except OSError as err:  # local files: a full disk, a read-only or missing output directory
        advice = "Free some space" if err.errno == errno.ENOSPC else "Choose another --output_dir"
        return _fail(f"Cannot write {err.filename or 'a file'}: {err.strerror or err}. {advice}.", ExitStatus.FAILED,
                     settings)
    except KeyboardInterrupt:
        return _fail("Interrupted.", ExitStatus.INTERRUPTED, settings)


def unreachable_message(err: Exception, settings: Settings) -> str:
    """Why the service could not be reached, and what to check."""
    if settings.env_file and local_stack_marker(Path(settings.env_file)).is_file():
        # make local's env file, left by a local stack that did not stop cleanly (killed): nothing listens.
        return ("The local stack is not running (its env file is left from an earlier run): start it with make "
                f"local in another shell, in {SCRIPTS_DIR}")
    return (f"Cannot reach the service ({type(err).__name__}): check AZURE_BATCH_ENDPOINT, BLOB_CONTAINER_URL and "
            f"the network. Detail: {str(err).splitlines()[0] if str(err) else ''}")


def _fail(message: str, exit_code: int, settings: Settings) -> int:
    # The Batch and storage account keys of the configuration, hidden wherever a message might quote them.
    secrets = (settings.batch["key"], settings.storage_key)
    print(f"Error: {redact(with_own_names(message, settings), secrets=secrets)}", file=sys.stderr)
    return exit_code


def with_own_names(message: str, settings: Settings) -> str:
    """The `az` hints of a message made runnable: the configured account and AZURE_RESOURCE_GROUP in place
    of the ACCOUNT and GROUP placeholders, where they are set."""
    if settings.batch["name"] and "AZURE_BATCH_ACCOUNT" not in settings.problems:
        message = message.replace("--name ACCOUNT --resource-group", f"--name {settings.batch['name']} "
                                                                     "--resource-group")
    if settings.resource_gpe_name:
        message = message.replace("--resource-group GROUP", f"--resource-group {settings.resource_gpe_name}")
    return message
