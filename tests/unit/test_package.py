"""toolkit/package.py and the local-folder part of toolkit/repository.py, on real folders and real git
repositories: what is packed, the archive's bytes (the same content, the same bytes), the content hash."""

import os
import subprocess
import tarfile

import pytest

from tests.git_repos import NODE_FILES, git, make_repository, write_files
from toolkit.checked import Storage
from toolkit.errors import ExitStatus, ToolkitError
from toolkit.package import FIXED_MTIME, pack_program
from toolkit.repository import local_program

STORAGE = Storage(container_url="http://127.0.0.1:10000/devstoreaccount1/c", sas_token="", key="k")


def pack(folder):
    return pack_program(local_program(str(folder)), STORAGE)


def members(package):
    with tarfile.open(package.archive) as archive:
        return {member.name: member for member in archive.getmembers()}


def test_the_same_content_gives_the_same_bytes_whatever_the_times_and_modes(tmp_path):
    folder = tmp_path / "program"
    write_files(folder, {**NODE_FILES, "b.txt": "b\n", "a/z.txt": "z\n"})
    first = pack(folder)
    os.utime(folder / "b.txt", (1, 1))
    os.chmod(folder / "b.txt", 0o600)  # no executable bit: still 0644 in the archive
    second = pack(folder)
    assert second.archive.read_bytes() == first.archive.read_bytes()
    assert second.content_sha256 == first.content_sha256 and len(first.content_sha256) == 64
    assert second.blob_name == f"programs/{first.content_sha256}.tar.gz"
    entries = members(first)
    assert list(entries) == sorted(entries)
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in entries.values()} == {(FIXED_MTIME, 0, 0, "", "")}
    assert entries["b.txt"].mode == 0o644 and first.files == len(entries) == 5


def test_the_content_hash_changes_with_a_file_or_an_executable_bit_only(tmp_path):
    folder = tmp_path / "program"
    write_files(folder, NODE_FILES)
    original = pack(folder).content_sha256
    os.chmod(folder / "src/x.py", 0o755)
    executable = pack(folder)
    assert executable.content_sha256 != original and members(executable)["src/x.py"].mode == 0o755
    (folder / "src/x.py").write_text("print(2)\n")
    assert pack(folder).content_sha256 not in (original, executable.content_sha256)


def test_a_plain_folder_is_every_file_but_git(tmp_path):
    folder = tmp_path / "plain"
    write_files(folder, {**NODE_FILES, ".git/config": "not a repository\n", "lib/.git": "gitdir: x\n",
                         ".hidden": "kept\n"})
    os.symlink("src/x.py", folder / "link.py")
    program = local_program(str(folder))
    assert program.names == tuple(sorted([".hidden", *NODE_FILES, "link.py"]))
    assert program.warnings == () and not program.from_head
    assert members(pack(folder))["link.py"].linkname == "src/x.py"


def test_a_work_tree_packs_tracked_and_untracked_not_ignored_files_as_they_are_now(tmp_path):
    repo = make_repository(tmp_path / "repo", {**NODE_FILES, ".gitignore": "outputs/\n", "gone.txt": "x\n"})
    write_files(repo, {"new.txt": "untracked\n", "outputs/o.txt": "ignored\n", "src/x.py": "print(2)\n"})
    (repo / "gone.txt").unlink()
    program = local_program(str(repo))
    assert program.names == tuple(sorted([".gitignore", *NODE_FILES, "new.txt"]))
    package = pack(repo)  # its archive lasts as long as it does
    with tarfile.open(package.archive) as archive:
        assert archive.extractfile("src/x.py").read() == b"print(2)\n"  # the work tree's, not HEAD's


def test_the_warning_lists_the_uncommitted_changes(tmp_path):
    repo = make_repository(tmp_path / "changed", {**NODE_FILES, ".gitignore": "outputs/\n"})
    write_files(repo, {"src/x.py": "print(2)\n", "a.txt": "", "outputs/o.txt": ""})
    warning, = local_program(str(repo)).warnings
    assert warning == (f"REPOSITORY_URL {repo} has uncommitted changes (src/x.py, a.txt): the nodes get them, "
                       "packed as they are now; commit them to keep a record of what ran.")
    write_files(repo, {f"f{n:02}.txt": "" for n in range(12)})
    warning, = local_program(str(repo)).warnings
    assert "f07.txt and 4 more): the nodes get them" in warning
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "all")
    assert local_program(str(repo)).warnings == ()


def test_a_folder_inside_a_repository_packs_that_folder(tmp_path):
    repo = make_repository(tmp_path / "top", {f"sub/{name}": text for name, text in NODE_FILES.items()})
    assert local_program(str(repo / "sub")).names == tuple(sorted(NODE_FILES))


def test_a_bare_repository_is_packed_from_head(tmp_path):
    repo = make_repository(tmp_path / "work")
    os.chmod(repo / "demo_azure_batch/install.sh", 0o755)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "executable")
    bare = tmp_path / "bare.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(repo), str(bare)], check=True, capture_output=True)
    program = local_program(str(bare))
    assert program.from_head and program.names == tuple(sorted(NODE_FILES))
    assert pack_program(program, STORAGE).content_sha256 == pack(repo).content_sha256  # the same files
    assert members(pack_program(program, STORAGE))["demo_azure_batch/install.sh"].mode == 0o755


def refused(path) -> str:
    with pytest.raises(ToolkitError) as raised:
        local_program(str(path))
    assert raised.value.exit_code == ExitStatus.USAGE and "\n" not in str(raised.value)
    return str(raised.value)


def test_a_folder_without_the_node_files_is_refused(tmp_path):
    folder = tmp_path / "partial"
    write_files(folder, {"src/x.py": "print(1)\n"})
    assert refused(folder) == (f"REPOSITORY_URL {folder} has no demo_azure_batch/install.sh and no "
                               "demo_azure_batch/requirements_node.txt: add them (the README's Run your own "
                               "program shows the layout).")


def test_an_ignored_node_file_is_named(tmp_path):
    repo = make_repository(tmp_path / "ignoring", {**NODE_FILES, ".gitignore": "*.sh\n"})
    assert refused(repo) == (f"REPOSITORY_URL {repo}: git ignores demo_azure_batch/install.sh, so the nodes would "
                             f"not get it: stop ignoring it (git -C {repo} check-ignore -v "
                             "demo_azure_batch/install.sh names the rule).")


def test_a_file_is_not_a_folder(tmp_path):
    (tmp_path / "program.tar").write_text("x")
    assert refused(tmp_path / "program.tar").startswith(f"REPOSITORY_URL {tmp_path / 'program.tar'} is a file, "
                                                        "not a folder: ")
