"""Deleting a node's files through the HTTP handlers of api/files.py, against a real in-memory account and a
node directory on disk: what goes, what a directory needs, and what answers 404 (issue 17)."""

from types import SimpleNamespace

import pytest

from batch_emulator.api import files
from batch_emulator.api.http import Request
from batch_emulator.runtime.executor import Executor
from batch_emulator.service.errors import BatchServiceError
from batch_emulator.service.state import Account, Node, Pool


@pytest.fixture
def node_root(tmp_path):
    """A pool p1 with node n1 whose root holds shared/a.txt and shared/sub/b.txt; the node's root directory."""
    account = Account(name="a", root=str(tmp_path / "account"))
    root = tmp_path / "account" / "nodes" / "n1"
    (root / "shared" / "sub").mkdir(parents=True)
    (root / "shared" / "a.txt").write_text("a")
    (root / "shared" / "sub" / "b.txt").write_text("b")
    (tmp_path / "account" / "outside.txt").write_text("not the node's")
    pool = Pool(id="p1", spec={"id": "p1", "vmSize": "standard_d2s_v5"})
    pool.nodes["n1"] = Node(id="n1", pool_id="p1", ip="127.0.0.2", dedicated=True, root=str(root))
    account.pools["p1"] = pool
    return SimpleNamespace(account=account, runtime=Executor(account)), root


def delete(server, file_path, recursive=False):
    req = Request("DELETE", "", [], {"recursive": "true"} if recursive else {}, {}, b"", "http://h",
                  {"poolId": "p1", "nodeId": "n1", "filePath": file_path})
    return files.delete_node_file(server, req)


def refusal(server, file_path, recursive=False):
    with pytest.raises(BatchServiceError) as caught:
        delete(server, file_path, recursive)
    return caught.value.status, caught.value.code


def test_a_file_is_deleted(node_root):
    server, root = node_root
    assert delete(server, "shared/a.txt").status == 200
    assert sorted(p.name for p in (root / "shared").iterdir()) == ["sub"]


def test_a_directory_needs_recursive(node_root):
    server, root = node_root
    assert refusal(server, "shared/sub") == (409, "OperationInvalidForCurrentState")
    assert (root / "shared" / "sub" / "b.txt").read_text() == "b"
    assert delete(server, "shared/sub", recursive=True).status == 200
    assert not (root / "shared" / "sub").exists() and (root / "shared" / "a.txt").exists()


@pytest.mark.parametrize("file_path", ["shared/missing.txt", "../../outside.txt", "shared/../../../outside.txt"])
def test_a_missing_file_or_one_outside_the_node_answers_404(node_root, file_path):
    server, root = node_root
    assert refusal(server, file_path, recursive=True) == (404, "FileNotFound")
    assert (root.parent.parent / "outside.txt").read_text() == "not the node's"
