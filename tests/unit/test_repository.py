"""toolkit/repository.py against real git repositories and real loopback sockets: what the nodes could not
clone is refused (exit 2, one line naming the fix), what cannot be told from here is a warning.

Every command a message gives as the fix is run here exactly as printed, and the check then passes.
"""

import os
import re
import subprocess
import time

import pytest

from tests.git_repos import (
    NODE_FILES,
    free_port,
    git,
    git_environment,
    make_repository,
    not_found_server,
    silent_server,
    write_files,
)
from toolkit.commands import is_url
from toolkit.errors import ExitStatus, ToolkitError
from toolkit.repository import PROBE_SECONDS, check_repository, host_and_port

FILES_ONLY = {name: text for name, text in NODE_FILES.items() if name.startswith("demo_azure_batch/")}


def refused(repository: str, timeout: float = PROBE_SECONDS) -> str:
    with pytest.raises(ToolkitError) as raised:
        check_repository(repository, timeout=timeout)
    assert raised.value.exit_code == ExitStatus.USAGE
    message = str(raised.value)
    assert "\n" not in message
    return message


def run_printed(command: str, tmp_path) -> None:
    """A command a message printed, run in bash exactly as printed."""
    subprocess.run(["bash", "-c", command], env=git_environment(tmp_path), check=True, capture_output=True)


def test_a_committed_repository_passes_without_warning(tmp_path):
    assert check_repository(str(make_repository(tmp_path / "good"))) == ()


def test_a_path_that_does_not_exist_is_refused(tmp_path):
    missing = tmp_path / "no-such-repo"
    assert refused(str(missing)) == (f"REPOSITORY_URL {missing} does not exist: set it to the path of a git clone "
                                     "of your repository, or to its git URL.")


def test_a_relative_path_is_refused_with_its_absolute_path(tmp_path, monkeypatch):
    make_repository(tmp_path / "good")
    monkeypatch.chdir(tmp_path)
    message = refused("good")
    assert message.startswith("REPOSITORY_URL good is a relative path: the nodes would look for it in their own")
    absolute = re.search(r"give its absolute path \((.*)\)\.$", message).group(1)
    assert absolute == str(tmp_path / "good") and check_repository(absolute) == ()


def test_a_plain_folder_passes_it_is_packed_for_the_nodes(tmp_path):
    folder = tmp_path / "plain folder"  # not git: create_pool_job.py packs it (toolkit/package.py)
    folder.mkdir()
    write_files(folder, NODE_FILES)
    assert check_repository(str(folder)) == ()


def test_a_repository_without_a_commit_passes_its_files_are_uncommitted_changes(tmp_path):
    repo = make_repository(tmp_path / "new", commit=False)
    warning, = check_repository(str(repo))
    assert warning.startswith(f"REPOSITORY_URL {repo} has uncommitted changes (demo_azure_batch/install.sh, ")
    run_printed(f"git -C {repo} add -A && git -C {repo} commit -q -m files", tmp_path)
    assert check_repository(str(repo)) == ()


def test_a_folder_inside_a_repository_is_packed_as_that_folder_and_needs_the_node_files(tmp_path):
    repo = make_repository(tmp_path / "top")
    assert refused(str(repo / "demo_azure_batch")) == (
        f"REPOSITORY_URL {repo / 'demo_azure_batch'} has no demo_azure_batch/install.sh and no "
        "demo_azure_batch/requirements_node.txt: add them (the README's Run your own program shows the layout).")
    assert check_repository(str(repo)) == ()


@pytest.mark.parametrize("left_out, named", [
    ("demo_azure_batch/install.sh", "has no demo_azure_batch/install.sh"),
    ("demo_azure_batch/requirements_node.txt", "has no demo_azure_batch/requirements_node.txt"),
])
def test_a_repository_without_a_node_file_is_refused(tmp_path, left_out, named):
    repo = make_repository(tmp_path / "partial", {k: v for k, v in NODE_FILES.items() if k != left_out})
    assert refused(str(repo)) == (f"REPOSITORY_URL {repo} {named}: add it (the README's Run your own program "
                                  "shows the layout).")
    write_files(repo, {left_out: "x\n"})  # in the work tree only: packed as it is, an uncommitted change
    assert check_repository(str(repo)) == (f"REPOSITORY_URL {repo} has uncommitted changes ({left_out}): the nodes "
                                           "get them, packed as they are now; commit them to keep a record of "
                                           "what ran.",)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "the node file")
    assert check_repository(str(repo)) == ()


def test_a_repository_with_neither_node_file_names_both(tmp_path):
    repo = make_repository(tmp_path / "bare-program", {"src/x.py": "print(1)\n"})
    assert (f"{repo} has no demo_azure_batch/install.sh and no demo_azure_batch/requirements_node.txt: add "
            "them") in refused(str(repo))


def test_uncommitted_changes_are_a_warning_naming_them(tmp_path):
    repo = make_repository(tmp_path / "changed", {**NODE_FILES, ".gitignore": "outputs/\n"})
    write_files(repo, {"src/x.py": "print(2)\n", "a.txt": "", "b.txt": "", "c.txt": "", "outputs/o.txt": ""})
    warning, = check_repository(str(repo))
    assert warning == (f"REPOSITORY_URL {repo} has uncommitted changes (src/x.py, a.txt, b.txt, c.txt): the nodes "
                       "get them, packed as they are now; commit them to keep a record of what ran.")
    git(repo, "add", "src/x.py")
    git(repo, "commit", "-q", "-m", "x")
    warning, = check_repository(str(repo))
    assert "uncommitted changes (a.txt, b.txt, c.txt):" in warning  # outputs/ is ignored: never named


def test_a_path_git_cannot_read_in_time_is_refused(tmp_path):
    repo = make_repository(tmp_path / "stalled")
    (repo / ".git" / "HEAD").unlink()
    os.mkfifo(repo / ".git" / "HEAD")  # git's read blocks, as on a stalled network file system
    started = time.monotonic()
    assert refused(str(repo), timeout=1) == (f"REPOSITORY_URL {repo}: git did not answer within 1 s; check that the "
                                             "path is readable (a stalled network file system?).")
    assert time.monotonic() - started < 5


def test_a_bare_repository_passes_it_has_no_work_tree(tmp_path):
    repo = make_repository(tmp_path / "work")
    subprocess.run(["git", "clone", "-q", "--bare", str(repo), str(tmp_path / "bare.git")], check=True)
    assert check_repository(str(tmp_path / "bare.git")) == ()


def test_a_file_url_to_a_repository_passes(tmp_path):
    assert check_repository(f"file://{make_repository(tmp_path / 'good')}") == ()


def test_a_file_url_that_does_not_exist_is_refused(tmp_path):
    url = f"file://{tmp_path}/no-such-repo"
    message = refused(url)
    assert message.startswith(f"REPOSITORY_URL {url} cannot be cloned (git: ")
    assert message.endswith("): check the URL, and that the repository is public or the URL holds credentials "
                            "the nodes can use.")


def test_an_empty_remote_repository_is_refused(tmp_path):
    subprocess.run(["git", "init", "-q", "--bare", str(tmp_path / "empty.git")], check=True)
    assert refused(f"file://{tmp_path}/empty.git") == (
        f"REPOSITORY_URL file://{tmp_path}/empty.git has no commit (the nodes clone HEAD): push one to it.")


def test_a_refused_connection_is_refused_without_the_credentials():
    port = free_port()
    message = refused(f"http://me:SECRET-TOKEN-1@127.0.0.1:{port}/me/repo.git")
    assert message == (f"REPOSITORY_URL http://127.0.0.1:{port}/me/repo.git: 127.0.0.1 refused the connection on "
                       f"port {port}: check the host and port in the URL (the nodes git clone it).")


def test_a_host_without_the_repository_is_refused_without_the_credentials():
    with not_found_server() as port:
        message = refused(f"http://me:SECRET-TOKEN-1@127.0.0.1:{port}/me/repo.git")
    assert message.startswith(f"REPOSITORY_URL http://127.0.0.1:{port}/me/repo.git cannot be cloned (git: ")
    assert "SECRET-TOKEN-1" not in message


@pytest.mark.parametrize("url", ["http://a..b/me/repo.git", "git@a..b:me/repo.git"])
def test_a_host_that_is_not_a_name_is_refused(url):
    assert refused(url) == f"REPOSITORY_URL {url}: a..b is not a host name: check the URL (the nodes git clone it)."


def test_ssh_never_prompts_a_refused_port_is_refused():
    port = free_port()
    assert "refused the connection" in refused(f"ssh://me@127.0.0.1:{port}/me/repo.git")


@pytest.mark.parametrize("user", ["http://me:SECRET-TOKEN-1@", "ssh://me@"])
def test_no_answer_is_a_warning_within_the_timeout(user):
    scheme = user.partition(":")[0]
    with silent_server() as port:
        started = time.monotonic()
        warning, = check_repository(f"{user}127.0.0.1:{port}/me/repo.git", timeout=1)
        assert time.monotonic() - started < 5  # git and its helper (ssh, git-remote-http) were killed
    assert warning == (f"could not reach REPOSITORY_URL {scheme}://127.0.0.1:{port}/me/repo.git (no answer in 1 s): "
                       "the nodes will try; if their preparation task fails, check the URL and that the nodes can "
                       "reach it.")


def test_without_git_nothing_is_checked_and_it_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no git on it
    warning, = check_repository("https://example.org/me/no-such-repo.git")
    assert warning.startswith("git is not installed here, so REPOSITORY_URL was not checked")


@pytest.mark.parametrize("repository, url, target", [
    ("https://github.com/me/repo.git", True, ("github.com", 443)),
    ("http://127.0.0.1:8080/r.git", True, ("127.0.0.1", 8080)),
    ("git@github.com:me/repo.git", True, ("github.com", 22)),
    ("ssh://git@host.example:2222/r.git", True, ("host.example", 2222)),
    ("git://host.example/r.git", True, ("host.example", 9418)),
    ("file:///srv/repo.git", True, None),
    ("/srv/my:repo", False, None),
    ("./a:b", False, None),
])
def test_what_git_reads_as_a_url_and_where_it_is_served(repository, url, target):
    assert is_url(repository) is url
    if url:
        assert host_and_port(repository) == target
