"""A task's and a node's files through the file routes of api/files.py, the operations of service/files.py and
the runtime's runtime/nodefiles.py, against a real account, the real Executor and node directories on disk:
listing, properties, download, and a node that leaves its pool while a request works on its files (issue 17)."""

import os
import shutil
from types import SimpleNamespace

import pytest

from batch_emulator.api import files
from batch_emulator.api.http import Request
from batch_emulator.runtime import nodefiles
from batch_emulator.runtime.executor import Executor
from batch_emulator.service.errors import BatchServiceError
from batch_emulator.service.state import Account, Job, Node, Pool, Task
from batch_emulator.service.work import FileInfo


@pytest.fixture
def account(tmp_path):
    """Pool p1 with node n1, whose root holds shared/a.txt, shared/sub/b.bin and the directory of task t1 of job
    J1 (stdout.txt, wd/out.txt); t1 ran on n1."""
    account = Account(name="a", root=str(tmp_path / "account"))
    root = tmp_path / "account" / "nodes" / "n1"
    (root / "shared" / "sub").mkdir(parents=True)
    (root / "shared" / "a.txt").write_text("a")
    (root / "shared" / "sub" / "b.bin").write_bytes(b"0123456789")
    task_dir = root / "workitems" / "J1" / "job-1" / "T1"
    (task_dir / "wd").mkdir(parents=True)
    (task_dir / "stdout.txt").write_text("hello\n")
    (task_dir / "wd" / "out.txt").write_text("out")
    pool = Pool(id="p1", spec={"id": "p1", "vmSize": "standard_d2s_v5"})
    pool.nodes["n1"] = Node(id="n1", pool_id="p1", ip="127.0.0.2", dedicated=True, root=str(root))
    account.pools["p1"] = pool
    job = Job(id="J1", spec={"id": "J1", "poolInfo": {"poolId": "p1"}})
    task = Task(id="T1", job_key="j1", spec={"id": "T1", "commandLine": "true"}, node_ids=["n1"])
    job.tasks["t1"] = task
    account.jobs["j1"] = job
    return account


def node_request(method, file_path=None, query=None, headers=None):
    params = {"poolId": "p1", "nodeId": "n1"}
    if file_path is not None:
        params["filePath"] = file_path
    return Request(method, "", [], query or {}, headers or {}, b"", "http://h", params)


def task_request(method, file_path=None, query=None):
    params = {"jobId": "j1", "taskId": "t1"}
    if file_path is not None:
        params["filePath"] = file_path
    return Request(method, "", [], query or {}, {}, b"", "http://h", params)


def refusal(call, *args):
    with pytest.raises(BatchServiceError) as caught:
        call(*args)
    return caught.value.status, caught.value.code


def test_a_node_listing_names_each_level_directories_first(account):
    server = SimpleNamespace(account=account, runtime=Executor(account))
    top = files.list_node_files(server, node_request("GET")).body["value"]
    assert [(e["name"], e["isDirectory"]) for e in top] == [("shared", True), ("workitems", True)]
    everything = files.list_node_files(server, node_request("GET", query={"recursive": "true"})).body["value"]
    names = [e["name"] for e in everything]
    assert names[:4] == ["shared", "workitems", "shared/sub", "shared/a.txt"]
    assert names[4] == "shared/sub/b.bin" and "workitems/J1/job-1/T1/wd/out.txt" in names
    b_bin = everything[4]
    assert b_bin["url"] == "http://h/pools/p1/nodes/n1/files/shared%2Fsub%2Fb.bin"
    assert b_bin["properties"]["contentLength"] == "10"
    assert b_bin["properties"]["contentType"] == "application/octet-stream"
    assert "properties" not in everything[0]


def test_a_task_listing_is_under_its_ids_as_created(account):
    server = SimpleNamespace(account=account, runtime=Executor(account))
    listed = files.list_task_files(server, task_request("GET", query={"recursive": "true"})).body["value"]
    assert [(e["name"], e["url"]) for e in listed] == [
        ("wd", "http://h/jobs/J1/tasks/T1/files/wd"),
        ("stdout.txt", "http://h/jobs/J1/tasks/T1/files/stdout.txt"),
        ("wd/out.txt", "http://h/jobs/J1/tasks/T1/files/wd%2Fout.txt")]
    assert listed[1]["properties"]["contentType"] == "text/plain"


def test_download_and_properties_of_a_file_and_a_directory(account):
    server = SimpleNamespace(account=account, runtime=Executor(account))
    got = files.download_task_file(server, task_request("GET", "stdout.txt"))
    assert (got.body, got.content_type, got.headers["ocp-batch-file-isdirectory"]) == (b"hello\n", "text/plain",
                                                                                       "False")
    assert got.headers["ocp-batch-file-url"] == "http%3A%2F%2Fh%2Fjobs%2FJ1%2Ftasks%2FT1%2Ffiles%2Fstdout.txt"
    part = files.download_node_file(server, node_request("GET", "shared/sub/b.bin", headers={"ocp-range": "bytes=2-4"}))
    assert part.body == b"234"
    head = files.node_file_properties(server, node_request("HEAD", "shared/sub"))
    assert (head.body, head.headers["Content-Length"], head.headers["ocp-batch-file-isdirectory"]) == (None, "0",
                                                                                                     "True")
    assert head.content_type == "application/octet-stream"
    assert refusal(files.node_file_properties, server, node_request("HEAD", "shared/nothing")) == (404,
                                                                                                   "FileNotFound")


class NodeLeavesFirst:
    """The real runtime, except that the node n1 leaves its pool, its directory with it, just before the runtime
    touches its files: what a shrink does between a request's lookup and its work on the disk."""

    def __init__(self, account):
        self.account, self.real = account, Executor(account)

    def _leave(self):
        with self.account.lock:
            node = self.account.pools["p1"].nodes.pop("n1")
        shutil.rmtree(node.root)

    def delete_file(self, directory, relative, recursive):
        self._leave()
        return self.real.delete_file(directory, relative, recursive)

    def read_file(self, directory, relative):
        self._leave()
        return self.real.read_file(directory, relative)


@pytest.mark.parametrize("handler, request_for", [
    (files.delete_node_file, lambda: node_request("DELETE", "shared/a.txt")),
    (files.delete_task_file, lambda: task_request("DELETE", "stdout.txt")),
    (files.download_node_file, lambda: node_request("GET", "shared/a.txt")),
    (files.download_task_file, lambda: task_request("GET", "stdout.txt")),
])
def test_a_node_that_leaves_during_a_request_answers_node_not_found(account, handler, request_for):
    server = SimpleNamespace(account=account, runtime=NodeLeavesFirst(account))
    assert refusal(handler, server, request_for()) == (404, "NodeNotFound")


def test_a_file_gone_while_its_node_stays_answers_file_not_found(account):
    directory = os.path.join(account.root, "nodes", "n1")
    os.unlink(os.path.join(directory, "shared", "a.txt"))
    assert refusal(nodefiles.delete_file, directory, "shared/a.txt", False) == (404, "FileNotFound")
    assert refusal(nodefiles.read_file, directory, "shared/a.txt") == (404, "FileNotFound")


def test_a_listing_leaves_out_what_is_gone(account, tmp_path):
    directory = os.path.join(account.root, "nodes", "n1", "shared")
    os.symlink(tmp_path / "never-there", os.path.join(directory, "dangling.txt"))   # stat finds nothing
    assert [i.name for i in nodefiles.list_files(directory, recursive=False)] == ["a.txt", "sub"]
    assert nodefiles.list_files(os.path.join(directory, "gone"), recursive=True) == []
    info = nodefiles.file_info(directory, "sub/b.bin")
    assert isinstance(info, FileInfo) and (info.name, info.size, info.is_directory) == ("sub/b.bin", 10, False)
