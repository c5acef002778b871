"""check_task.py --node_logs and --login: the Batch service logs of a task's nodes, downloaded, and a
short-lived SSH user on its primary node, for when a task's own stdout/stderr do not say enough.

--node_logs TASK_ID asks each node of the task (its primary and the other nodes of an MPI task; for a task
that never ran, the nodes whose job preparation failed) to upload its service logs to the blob container
(the upload service logs API, with a create/write SAS), waits for them to arrive (the service answers
before the node has uploaded them), then downloads them, atomically and in parallel, into
OUTPUT_DIR/JOB/TASK/node-logs/NODE_ID/.

--login TASK_ID adds a user with the caller's SSH public key on the task's primary node, lasting
LOGIN_LIFETIME, and prints the ssh command from the node's remote login settings, and how to remove it.
"""

from __future__ import annotations

import datetime
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from toolkit.batch import wire_value
from toolkit.checked import Storage
from toolkit.errors import ExitStatus, ToolkitError
from toolkit.outputs import write_atomically
from toolkit.storage import container_sas_url, make_container_client

if TYPE_CHECKING:
    from azure.batch import BatchClient
    from azure.storage.blob import ContainerClient

# How long the logs' upload SAS lasts: the service uploads at once, the files are small.
UPLOAD_SAS_LIFETIME = datetime.timedelta(hours=1)
# How long the nodes may take to upload their logs once the service has answered.
UPLOAD_WAIT_SECONDS = 120
FIRST_POLL_SECONDS, LAST_POLL_SECONDS = 0.2, 5.0   # how often it looks meanwhile: soon, then less often
# How long a --login user lasts (the service's default is one day; debugging needs less).
LOGIN_LIFETIME = datetime.timedelta(hours=4)
DEFAULT_KEYS = ("~/.ssh/id_ed25519.pub", "~/.ssh/id_rsa.pub")


@dataclass(frozen=True)
class NodeRef:
    pool_id: str
    node_id: str


def task_nodes(client: BatchClient, job_id: str, task_id: str) -> list[NodeRef]:
    """The nodes a task ran on (primary first), or, for a task that never ran, the nodes whose job
    preparation failed (they run none of the job's tasks: their logs say why)."""
    from azure.core.exceptions import ResourceNotFoundError

    try:
        task = client.get_task(job_id, task_id, select=["id", "state", "nodeInfo", "multiInstanceSettings"])
    except ResourceNotFoundError:
        raise ToolkitError(f"Task [{task_id}] of job [{job_id}] does not exist (python3 check_task.py --job_id "
                           f"{job_id} lists its tasks).", ExitStatus.USAGE) from None
    nodes = []
    if task.node_info and task.node_info.node_id and task.node_info.pool_id:
        nodes.append(NodeRef(task.node_info.pool_id, task.node_info.node_id))
        if task.multi_instance_settings:
            for sub in client.list_subtasks(job_id, task_id):
                if sub.node_info and sub.node_info.node_id and sub.node_info.pool_id:
                    nodes.append(NodeRef(sub.node_info.pool_id, sub.node_info.node_id))
        return nodes
    for status in client.list_job_preparation_and_release_task_status(job_id):
        info = status.job_preparation_task_execution_info
        if info is not None and wire_value(info.result) == "failure" and status.pool_id and status.node_id:
            nodes.append(NodeRef(status.pool_id, status.node_id))
    if not nodes:
        raise ToolkitError(f"Task [{task_id}] has not run on any node yet, and no node's job preparation failed: "
                           "no node logs to fetch yet.", ExitStatus.FAILED)
    return nodes


def fetch_node_logs(client: BatchClient, storage: Storage, job_id: str, task_id: str, output_dir: Path) -> int:
    """Upload each node's service logs to the container, then download them into node-logs/NODE_ID/."""
    from azure.batch import models

    nodes = task_nodes(client, job_id, task_id)
    upload_url = container_sas_url(storage, "cw", UPLOAD_SAS_LIFETIME)
    since = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=7)
    print(f"Uploading the service logs of {len(nodes)} node(s) of task [{task_id}] to the blob container...")
    uploads = []
    for node in nodes:
        result = client.upload_node_logs(node.pool_id, node.node_id, models.UploadBatchServiceLogsOptions(
            container_url=upload_url, start_time=since))
        uploads.append(NodeUpload(node.node_id, result.virtual_directory_name.rstrip("/") + "/",
                                  result.number_of_files_uploaded))
        print(f"  node [{node.node_id}]: {result.number_of_files_uploaded} file(s)")
    container = make_container_client(storage, "rl", UPLOAD_SAS_LIFETIME)
    arrived = wait_for_uploads(container, uploads)
    target = output_dir / job_id / task_id / "node-logs"
    cancelled = threading.Event()
    jobs = [(upload, name) for upload in uploads for name in arrived[upload.node_id]]

    def download(item: tuple[NodeUpload, str]) -> int:
        upload, name = item
        return write_atomically(target / upload.node_id / name[len(upload.prefix):],
                                container.download_blob(name).chunks(), cancelled)

    with ThreadPoolExecutor(8) as pool:
        sizes = list(pool.map(download, jobs))
    print(f"Downloaded {len(sizes)} log file(s) ({sum(sizes)} bytes) into {target}/")
    missing = [upload for upload in uploads if len(arrived[upload.node_id]) < upload.files]
    if missing:
        late = ", ".join(f"[{u.node_id}] {len(arrived[u.node_id])} of {u.files}" for u in missing)
        raise ToolkitError(f"Not every node's logs arrived within {UPLOAD_WAIT_SECONDS} s (node {late} file(s)): "
                           "the node could not write to the blob container, or is still uploading. Run the same "
                           "command again later.", ExitStatus.FAILED)
    return ExitStatus.OK


@dataclass(frozen=True)
class NodeUpload:
    """One node's upload of its service logs, as the service answered: its blobs are PREFIX + path."""
    node_id: str
    prefix: str
    files: int


def safe_name(name: str, prefix: str) -> bool:
    """A blob of the upload whose path below the prefix stays inside the node's directory once downloaded."""
    parts = name[len(prefix):].split("/")
    return name.startswith(prefix) and all(part not in ("", ".", "..") for part in parts)


def wait_for_uploads(container: ContainerClient, uploads: list[NodeUpload]) -> dict[str, list[str]]:
    """The blob names of each node's upload once all its files are there, or what came within
    UPLOAD_WAIT_SECONDS: the service answers before the node has uploaded (the REST reference: "the number
    of log files which will be uploaded"), so the blobs come a moment later."""
    deadline = time.monotonic() + UPLOAD_WAIT_SECONDS
    arrived: dict[str, list[str]] = {}
    pending = list(uploads)
    delay = FIRST_POLL_SECONDS
    while True:
        for upload in list(pending):
            names = [blob.name for blob in container.list_blobs(name_starts_with=upload.prefix)]
            arrived[upload.node_id] = [name for name in names if safe_name(name, upload.prefix)]
            if len(arrived[upload.node_id]) >= upload.files:
                pending.remove(upload)
        if not pending or time.monotonic() >= deadline:
            return arrived
        if delay == FIRST_POLL_SECONDS:   # said once, before the first wait
            print(f"Waiting for {len(pending)} node(s) to finish uploading...")
        time.sleep(delay)
        delay = min(delay * 2, LAST_POLL_SECONDS)


def public_key(path: str | None) -> tuple[str, Path]:
    """The caller's SSH public key (--ssh_key, else ~/.ssh/id_ed25519.pub or id_rsa.pub) and its file."""
    candidates = [path] if path else list(DEFAULT_KEYS)
    for candidate in candidates:
        file = Path(candidate).expanduser()
        if file.is_file():
            text = file.read_text().strip()
            if not text.startswith(("ssh-", "ecdsa-")) or len(text.split()) < 2:
                raise ToolkitError(f"{file} is not an SSH public key (ssh-ed25519 AAAA...): give the .pub file "
                                   "with --ssh_key PATH.", ExitStatus.USAGE)
            return text, file
    raise ToolkitError(f"No SSH public key found ({', '.join(candidates)}): make one with ssh-keygen -t ed25519, or "
                       "give one with --ssh_key PATH.", ExitStatus.USAGE)


def login(client: BatchClient, job_id: str, task_id: str, key_path: str | None) -> int:
    """Add a short-lived admin user with the caller's public key on the task's primary node; print how to log in
    (the node's remote login settings) and how to remove the user."""
    from azure.batch import models

    key, key_file = public_key(key_path)
    primary = task_nodes(client, job_id, task_id)[0]
    name = f"debug-{secrets.token_hex(3)}"
    expiry = datetime.datetime.now(datetime.timezone.utc) + LOGIN_LIFETIME
    print(f"Adding user [{name}] on node [{primary.node_id}] of pool [{primary.pool_id}]...")
    client.create_node_user(primary.pool_id, primary.node_id, models.BatchNodeUserCreateOptions(
        name=name, is_admin=True, expiry_time=expiry, ssh_public_key=key))
    remote = client.get_node_remote_login_settings(primary.pool_id, primary.node_id)
    private = key_file.with_suffix("") if key_file.suffix == ".pub" else key_file
    print(f"Log in with: ssh -i {private} -p {remote.remote_login_port} {name}@{remote.remote_login_ip_address}")
    # The account and endpoint go on the az command line: the toolkit's settings often live in its .env file, which
    # az never reads (without them az stops: "Specify batch account in command line or environment variable").
    # The key never does: az takes it from AZURE_BATCH_ACCESS_KEY, or signs in with az login.
    from toolkit.settings import read_settings

    batch = read_settings().batch
    print(f"The user lasts until {expiry:%Y-%m-%d %H:%M} UTC (it has sudo). Remove it sooner with: "
          f"az batch node user delete --account-name {batch['name']} --account-endpoint {batch['url']} "
          f"--pool-id {primary.pool_id} --node-id {primary.node_id} --user-name {name} --yes "
          "(with AZURE_BATCH_ACCESS_KEY set, or after az login)")
    return ExitStatus.OK
