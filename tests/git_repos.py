"""Real git repositories and loopback servers for the tests of the REPOSITORY_URL check (toolkit/repository.py)."""

import contextlib
import http.server
import os
import socket
import subprocess
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path

from config_resources import INSTALL_SCRIPT, NODE_REQUIREMENTS

# What a repository the nodes can use holds (the README's "Run your own program" layout).
NODE_FILES = {INSTALL_SCRIPT: "#!/bin/sh\necho installed\n", NODE_REQUIREMENTS: "mpi4py\n", "src/x.py": "print(1)\n"}


def git_environment(home: Path) -> dict[str, str]:
    """An environment in which `git commit` works without the user's configuration."""
    return {"PATH": os.environ.get("PATH", os.defpath), "HOME": str(home), "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
            "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org"}


def git(path: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(path), *args], env=git_environment(path.parent), check=True,
                   capture_output=True, stdin=subprocess.DEVNULL)


def write_files(path: Path, files: Mapping[str, str]) -> None:
    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)


def make_repository(path: Path, files: Mapping[str, str] = NODE_FILES, commit: bool = True) -> Path:
    """A git repository at `path` holding `files`, committed unless `commit` is False."""
    path.mkdir(parents=True, exist_ok=True)
    write_files(path, files)
    git(path, "init", "-q")
    if commit:
        git(path, "add", "-A")
        git(path, "commit", "-q", "-m", "files")
    return path


def free_port() -> int:
    """A loopback port nothing listens on (just released by the system)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def silent_server() -> Iterator[int]:
    """A loopback port that accepts connections (the system completes them) and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield int(listener.getsockname()[1])


@contextlib.contextmanager
def not_found_server() -> Iterator[int]:
    """A loopback HTTP server answering 404 to everything: a host that is there, without the repository."""
    class NotFound(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_error(404)

        def log_message(self, *args: object) -> None:
            pass

    with serving(NotFound) as port:
        yield port


@contextlib.contextmanager
def git_http_server(root: Path) -> Iterator[int]:
    """A loopback HTTP server of the folder `root`, whose bare repositories (after `git update-server-info`)
    git clones over its "dumb" HTTP protocol: a real remote URL that never leaves the machine."""
    class Files(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(root), **kwargs)  # type: ignore[arg-type]

        def log_message(self, *args: object) -> None:
            pass

    with serving(Files) as port:
        yield port


def served_repository(root: Path, name: str, files: Mapping[str, str] = NODE_FILES) -> Path:
    """A bare clone of a repository holding `files`, at root/name, ready for git_http_server."""
    source = make_repository(root.parent / f"{root.name}-source" / name, files)
    target = root / name
    target.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "clone", "-q", "--bare", str(source), str(target)], env=git_environment(root.parent),
                   check=True, capture_output=True, stdin=subprocess.DEVNULL)
    git(target, "update-server-info")
    return target


@contextlib.contextmanager
def serving(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
