"""The check of REPOSITORY_URL that create_pool_job.py makes before any request: what the nodes will get.

A git URL is cloned by the default preparation task on every node (`git clone REPOSITORY_URL repo`); a
local folder is packed by create_pool_job.py (toolkit/package.py) and unpacked there instead. Either way
the nodes then run demo_azure_batch/install.sh. A mistake would otherwise show only minutes later, as a
failed preparation task on a node that keeps costing while its tasks wait (batch-facts §26). So:

- a local path must be absolute, be an existing folder, and hold INSTALL_SCRIPT and NODE_REQUIREMENTS
  among the files that are packed (local_program): a git work tree's tracked and untracked-but-not-ignored
  files as they are now (uncommitted changes are a warning naming them: the nodes get them, but no commit
  records them), a bare repository's HEAD, or a plain folder's every file but .git;
- a URL is probed with `git ls-remote`, never prompting, for PROBE_SECONDS at most. A repository that is
  not there, refused credentials or a refused connection are errors; no answer in time, or a host this
  machine cannot resolve, only a warning (the nodes' network and DNS are not this machine's: they will try).

git reports all of these failures with exit code 128, in words only. So its exit code says whether the
probe worked, and a plain TCP connection to the URL's host says why it did not: refused, no answer, no
such host (typed socket errors), or the host answered, so that git's failure was the repository's.

Errors are ToolkitError with ExitStatus.USAGE (found before any request); warnings are returned, for the
caller to print. Without git on this machine a URL is not checked (one warning: the check is a convenience),
and a local folder is packed as a plain folder.
"""

from __future__ import annotations

import enum
import os
import shlex
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from toolkit.commands import INSTALL_SCRIPT, NODE_REQUIREMENTS, is_url
from toolkit.errors import ExitStatus, ToolkitError
from toolkit.jobs import shown_url
from toolkit.redaction import redact

# How long the whole probe of a URL may take: git ls-remote, then the connection that says why it failed.
PROBE_SECONDS = 15.0
# The uncommitted paths a warning names; the others are counted.
SHOWN_CHANGES = 10
# git ls-remote --exit-code: the repository answered but has no ref matching HEAD (no commit).
LS_REMOTE_NO_MATCH = 2
# The ports git uses for each scheme that names a host (git-clone(1), GIT URLS).
DEFAULT_PORTS = {"http": 80, "https": 443, "ssh": 22, "git+ssh": 22, "ssh+git": 22, "git": 9418}
# The environment of every git command: never prompt (CI has no stdin, the user may not be watching),
# and no GIT_DIR and the like inherited from a git hook, which would point `git -C PATH` elsewhere.
QUIET_GIT = {"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "", "GCM_INTERACTIVE": "never"}
INHERITED_GIT_LOCATIONS = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY")


@dataclass(frozen=True)
class GitResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def reason(self) -> str:
        """git's first line on stderr, without its 'fatal: ' prefix (what it says went wrong)."""
        first = next((line.strip() for line in self.stderr.splitlines() if line.strip()), "")
        return first.removeprefix("fatal: ").removeprefix("error: ")[:200] or f"exit code {self.returncode}"


class Reach(enum.Enum):
    """What a TCP connection to a URL's host found."""
    ANSWERED = "answered"
    REFUSED = "refused"
    SILENT = "no answer"
    UNRESOLVED = "no such host"
    NOT_A_NAME = "not a host name"
    UNREACHABLE = "unreachable"


def git_environment() -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if name not in INHERITED_GIT_LOCATIONS}
    env.update(QUIET_GIT)
    if not (env.get("GIT_SSH_COMMAND") or env.get("GIT_SSH")):  # the user's own ssh command is kept as it is
        env["GIT_SSH_COMMAND"] = "ssh -o BatchMode=yes"  # no password or passphrase prompt: fail instead
    return env


def run_git(args: list[str], timeout: float) -> GitResult | None:
    """git ARGS, or None when it has not finished within `timeout` seconds (it is then killed).

    It runs in a session of its own: no terminal to prompt on, and a timeout kills its helpers too
    (git-remote-http, ssh), which would otherwise keep its output open and the wait going.
    """
    process = subprocess.Popen(["git", *args], env=git_environment(), stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        return None
    return GitResult(process.returncode, stdout, stderr)


def check_repository(repository: str, timeout: float = PROBE_SECONDS) -> tuple[str, ...]:
    """The warnings about REPOSITORY_URL; raises ToolkitError (exit 2) when the nodes could not clone it,
    a local folder could not be packed for them (toolkit/package.py), or either lacks the node files."""
    if not is_url(repository):
        return local_program(repository, timeout).warnings
    if shutil.which("git") is None:
        return ("git is not installed here, so REPOSITORY_URL was not checked: the nodes will clone it anyway "
                "(install git to have it checked first).",)
    return check_url(repository, timeout)


def usage_error(message: str) -> ToolkitError:
    return ToolkitError(message, ExitStatus.USAGE)


@dataclass(frozen=True)
class LocalProgram:
    """The files of a local REPOSITORY_URL that create_pool_job.py packs for the nodes (toolkit/package.py)."""
    folder: str
    names: tuple[str, ...]      # relative to `folder`, '/'-separated, sorted; files and symbolic links
    from_head: bool             # a bare repository: the files of its HEAD commit (it has no work tree)
    warnings: tuple[str, ...]


def local_program(path: str, timeout: float = PROBE_SECONDS) -> LocalProgram:
    """What of the folder `path` the nodes get: a git work tree's tracked and untracked-but-not-ignored
    files as they are now (uncommitted changes are a warning naming them), a bare repository's HEAD, or
    every file of a plain folder but .git. Raises ToolkitError (exit 2) for a path that is not such a
    folder or lacks INSTALL_SCRIPT or NODE_REQUIREMENTS."""
    if not os.path.isabs(path):
        raise usage_error(f"REPOSITORY_URL {path} is a relative path: the nodes would look for it in their own "
                          f"working directory; give its absolute path ({os.path.abspath(os.path.expanduser(path))}).")
    if not os.path.exists(path):
        raise usage_error(f"REPOSITORY_URL {path} does not exist: set it to the path of a git clone of your "
                          "repository, or to its git URL.")
    if not os.path.isdir(path):
        raise usage_error(f"REPOSITORY_URL {path} is a file, not a folder: set it to the folder of your program "
                          "(a git clone or a plain folder), or to its git URL.")
    kind = git_kind(path, timeout) if shutil.which("git") else None
    warnings: tuple[str, ...] = ()
    if kind == "bare":
        names = head_files(path, timeout)
    elif kind == "work tree":
        names = work_tree_files(path, timeout)
        warnings = uncommitted_warning(path, timeout)
    else:
        names = folder_files(path)
        if shutil.which("git") is None and os.path.exists(os.path.join(path, ".git")):
            warnings = (f"git is not installed here: REPOSITORY_URL {path} is packed as a plain folder (every "
                        "file but .git, .gitignore not applied).",)
    missing = [name for name in (INSTALL_SCRIPT, NODE_REQUIREMENTS) if name not in names]
    if missing:
        raise usage_error(missing_files(path, missing, from_head=kind == "bare"))
    return LocalProgram(folder=path, names=names, from_head=kind == "bare", warnings=warnings)


def git_kind(path: str, timeout: float) -> str | None:
    """'bare' or 'work tree' for a folder in a git repository, None for a plain folder."""
    found = run_git(["-C", path, "rev-parse", "--is-bare-repository", "--is-inside-work-tree"], timeout)
    if found is None:
        raise usage_error(f"REPOSITORY_URL {path}: git did not answer within {timeout:g} s; check that the path "
                          "is readable (a stalled network file system?).")
    if found.returncode != 0:
        return None
    bare, inside = (found.stdout.split() + ["", ""])[:2]
    return "bare" if bare == "true" else "work tree" if inside == "true" else None


def git_names(path: str, args: list[str], timeout: float) -> GitResult:
    listed = run_git(["-C", path, *args], timeout)
    if listed is None:
        raise usage_error(f"REPOSITORY_URL {path}: git did not answer within {timeout:g} s; check that the path "
                          "is readable (a stalled network file system?).")
    return listed


def work_tree_files(path: str, timeout: float) -> tuple[str, ...]:
    """The tracked and untracked-but-not-ignored files under `path` as they are now (deleted ones left out)."""
    listed = git_names(path, ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], timeout)
    if listed.returncode != 0:
        raise usage_error(f"REPOSITORY_URL {path}: git cannot list its files ({listed.reason}).")
    names = {name for name in listed.stdout.split("\0") if name}
    return tuple(sorted(name for name in names if os.path.lexists(os.path.join(path, name))))


def head_files(path: str, timeout: float) -> tuple[str, ...]:
    listed = git_names(path, ["ls-tree", "-r", "-z", "--name-only", "HEAD"], timeout)
    if listed.returncode != 0:
        raise usage_error(f"REPOSITORY_URL {path} is a bare git repository without a commit (it is packed from "
                          "HEAD): push one to it.")
    return tuple(sorted(name for name in listed.stdout.split("\0") if name))


def folder_files(path: str) -> tuple[str, ...]:
    """Every file and symbolic link under `path`, .git (a folder or a file) left out wherever it is."""
    names: list[str] = []
    for directory, subdirectories, files in os.walk(path):
        links = [name for name in subdirectories if os.path.islink(os.path.join(directory, name))]
        subdirectories[:] = [name for name in subdirectories if name != ".git" and name not in links]
        relative = os.path.relpath(directory, path)
        for name in [*files, *links]:
            if name != ".git":
                names.append(name if relative == "." else f"{relative}/{name}".replace(os.sep, "/"))
    return tuple(sorted(names))


def missing_files(path: str, missing: list[str], from_head: bool) -> str:
    """The one line naming the node files the nodes would not get."""
    if from_head:
        return (f"REPOSITORY_URL {path} has no {' and no '.join(missing)} at HEAD (it is packed from HEAD): commit "
                f"{'it' if len(missing) == 1 else 'them'} (the README's Run your own program shows the layout).")
    ignored = [name for name in missing if os.path.exists(os.path.join(path, name))]
    if ignored:
        return (f"REPOSITORY_URL {path}: git ignores {' and '.join(ignored)}, so the nodes would not get it: stop "
                f"ignoring it (git -C {shlex.quote(path)} check-ignore -v {ignored[0]} names the rule).")
    return (f"REPOSITORY_URL {path} has no {' and no '.join(missing)}: add {'it' if len(missing) == 1 else 'them'} "
            "(the README's Run your own program shows the layout).")


def uncommitted_warning(path: str, timeout: float) -> tuple[str, ...]:
    changed = uncommitted_paths(path, timeout)
    if not changed:
        return ()
    more = f" and {len(changed) - SHOWN_CHANGES} more" if len(changed) > SHOWN_CHANGES else ""
    return (f"REPOSITORY_URL {path} has uncommitted changes ({', '.join(changed[:SHOWN_CHANGES])}{more}): the "
            "nodes get them, packed as they are now; commit them to keep a record of what ran.",)


def uncommitted_paths(path: str, timeout: float) -> list[str]:
    """The paths under `path` with changes HEAD does not have (untracked files included, ignored ones not),
    relative to the repository's top; none for a bare repository, which has no work tree."""
    inside = run_git(["-C", path, "rev-parse", "--is-inside-work-tree"], timeout)
    if inside is None or inside.stdout.strip() != "true":
        return []
    status = run_git(["-C", path, "status", "--porcelain", "-z", "--no-renames", "--untracked-files=all", "--", "."],
                     timeout)
    if status is None or status.returncode != 0:
        return []
    return [entry[3:] for entry in status.stdout.split("\0") if len(entry) > 3]  # "XY path" each


def host_and_port(url: str) -> tuple[str, int] | None:
    """Where a URL's repository is served, or None for a URL without a host (file://) or a scheme
    this check does not know (a remote helper's)."""
    if "://" not in url:  # scp-like [user@]host:path, over ssh
        host = url.partition(":")[0].rpartition("@")[2]
        return (host.strip("[]"), DEFAULT_PORTS["ssh"]) if host else None
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        return None
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    return parts.hostname, port or DEFAULT_PORTS[scheme]


def reach(host: str, port: int, timeout: float) -> tuple[Reach, str]:
    """What a TCP connection to host:port finds within `timeout` seconds, and the system's words for it."""
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except socket.gaierror as err:
        return Reach.UNRESOLVED, f"{host} does not resolve here: {err.strerror}"
    except ValueError:  # no resolver is even asked (an empty label: a..b): no node could resolve it either
        return Reach.NOT_A_NAME, f"{host} is not a host name"
    except ConnectionRefusedError:
        return Reach.REFUSED, "connection refused"
    except TimeoutError:
        return Reach.SILENT, f"no answer in {timeout:g} s"
    except OSError as err:
        return Reach.UNREACHABLE, str(err.strerror or err)
    return Reach.ANSWERED, ""


def check_url(url: str, timeout: float) -> tuple[str, ...]:
    shown = shown_url(url)
    parts = urlsplit(url) if "://" in url else None
    secrets = (parts.username, parts.password) if parts else ()
    deadline = time.monotonic() + timeout
    listed = run_git(["ls-remote", "--exit-code", url, "HEAD"], timeout)
    if listed is None:
        return (no_answer(shown, f"no answer in {timeout:g} s"),)
    if listed.returncode == 0:
        return ()
    if listed.returncode == LS_REMOTE_NO_MATCH:
        raise usage_error(f"REPOSITORY_URL {shown} has no commit (the nodes clone HEAD): push one to it.")
    reason = redact(listed.reason.replace(url, shown), secrets=secrets)
    cannot_clone = usage_error(f"REPOSITORY_URL {shown} cannot be cloned (git: {reason}): check the URL, and "
                               "that the repository is public or the URL holds credentials the nodes can use.")
    target = host_and_port(url)
    if target is None:
        raise cannot_clone
    host, port = target
    outcome, words = reach(host, port, max(deadline - time.monotonic(), 1.0))
    if outcome is Reach.REFUSED:
        raise usage_error(f"REPOSITORY_URL {shown}: {host} refused the connection on port {port}: check the host "
                          "and port in the URL (the nodes git clone it).")
    if outcome is Reach.NOT_A_NAME:
        raise usage_error(f"REPOSITORY_URL {shown}: {words}: check the URL (the nodes git clone it).")
    if outcome is Reach.ANSWERED:  # the host is there: git's failure is the repository's, or its credentials'
        raise cannot_clone
    return (no_answer(shown, words),)


def no_answer(shown: str, words: str) -> str:
    return (f"could not reach REPOSITORY_URL {shown} ({words}): the nodes will try; if their preparation task "
            "fails, check the URL and that the nodes can reach it.")
