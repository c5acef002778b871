"""Runs what the scheduler decides: node start-up, job preparation, tasks (single and multi-instance).

One scheduler thread ticks every TICK_SECONDS; each node start-up and each task run gets
its own worker thread. Workers hold the account lock only to update state, never while
a process runs or a file moves, so HTTP handlers are never blocked by work on nodes.
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from ..service import lifecycle, scheduler
from ..service.lifecycle import ENDED, ENDED_EXIT_CODE, EXIT_CODE_FAILURE, launch_failure
from ..service.quota import vm_cores
from ..service.specs import NameValues, NodeTask
from ..service.state import Account, Job, Node, NodeUser, Pool, Task, iso, utcnow
from ..service.states import (
    ErrorCategory,
    ExecutionResult,
    JobState,
    NodeAction,
    NodeState,
    StartTaskState,
    StopReason,
    TaskState,
)
from ..service.validation import parse_duration
from ..service.work import FileInfo, LogUpload
from . import blobio, node_actions, node_logs, node_users, nodefiles, taskrun
from .isolation import NetnsNodes
from .processes import Launcher

TICK_SECONDS = 0.1

def _seconds(duration_text: str | None) -> float | None:
    return parse_duration(duration_text, "maxWallClockTime").total_seconds() if duration_text else None


def _record_completion(info: dict[str, Any], exit_code: int | None, failure: dict[str, Any] | None) -> None:
    """A start or job preparation task's info once it has run: completed, its result, exit code, failure."""
    info.update(state=StartTaskState.COMPLETED, endTime=iso(utcnow()),
                result=ExecutionResult.FAILURE if failure else ExecutionResult.SUCCESS)
    if exit_code is not None:
        info["exitCode"] = exit_code
    if failure:
        info["failureInfo"] = failure


class Executor:
    def __init__(self, account: Account, verbose: bool = False, nodes: NetnsNodes | None = None) -> None:
        self.account = account
        self.nodes = nodes   # --isolation netns: each node a network namespace (isolation.py)
        self.launcher = Launcher(nodes)
        self.verbose = verbose
        self.stopping = threading.Event()
        self.threads: set[threading.Thread] = set()
        self.prep_locks: dict[tuple[str, str], threading.Lock] = {}
        self.node_accounts = node_users.NodeAccounts(nodes)   # node users' accounts and login ports
        self.scheduler_thread = threading.Thread(target=self._loop, name="batch-scheduler", daemon=True)

    # ---- lifecycle ----

    def start(self) -> None:
        self.scheduler_thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.account.wake()
        self.launcher.shutdown()
        deadline = time.monotonic() + 5
        for thread in list(self.threads) + [self.scheduler_thread]:
            thread.join(max(0.0, deadline - time.monotonic()))
        self.node_accounts.close()   # the login ports' listeners and the users' expiry timers
        if self.nodes is not None:
            self.nodes.shutdown()

    def _loop(self) -> None:
        while not self.stopping.is_set():
            try:
                with self.account.changed:
                    actions = scheduler.tick(self.account)
                    live = {node_id for pool in self.account.pools.values() for node_id in pool.nodes}
                if self.nodes is not None:
                    self.nodes.forget_others(live)   # nodes that left their pool stop
                for action in actions:
                    self._dispatch(action)
                with self.account.changed:
                    self.account.changed.wait(TICK_SECONDS)
            except Exception:   # keep scheduling whatever one bad object does
                traceback.print_exc(file=sys.stderr)
                time.sleep(TICK_SECONDS)

    def _dispatch(self, action: scheduler.Action) -> None:
        """Start the scheduler's ``action`` on a worker thread of its own."""
        if isinstance(action, scheduler.Provision):
            self.spawn(self._provision_node, action.pool, action.node)
        elif isinstance(action, scheduler.RunTask):
            self.spawn(self._run_task_guarded, action.job, action.task, list(action.nodes))
        elif isinstance(action, scheduler.RemoveJobFiles):
            self.spawn(self._remove_job_files, action.job)
        else:
            self.spawn(self._remove_node_files, action.node)

    def spawn(self, target: Callable[..., object], *args: Any) -> None:
        def run() -> None:
            try:
                target(*args)
            finally:
                self.threads.discard(threading.current_thread())
        thread = threading.Thread(target=run, daemon=True)
        self.threads.add(thread)
        thread.start()

    def discard_files(self, paths: list[str]) -> None:
        """Delete task/job directories in the background (HTTP handlers call this)."""
        def remove() -> None:
            for path in paths:
                shutil.rmtree(path, ignore_errors=True)
        self.spawn(remove)

    # ---- the service.work.Runtime interface the service's operations use (files: nodefiles.py) ----

    def end_task(self, job: Job, task: Task, reason: StopReason) -> None:
        """End ``task``'s work (account lock held): terminate or delete (see service.work.Runtime)."""
        if task.busy:
            task.stop_reason = reason   # the worker kills the processes, then completes or drops the task
        elif reason == StopReason.TERMINATE:     # never ran: it completes at once, with the failure of an ended task
            lifecycle.complete(self.account, job, task, None, dict(ENDED[StopReason.TERMINATE]), [])
        else:
            self.remove_task_files(job, task)

    def remove_task_files(self, job: Job, task: Task) -> None:
        """Directories of a deleted task on every node it ran on (the files go with the task)."""
        rel = os.path.join("workitems", job.id, "job-1", task.id)
        self.discard_files([os.path.join(self.account.node_dir(node_id), rel) for node_id in task.node_ids])

    def restart_node(self, node: Node, action: NodeAction) -> None:
        """Reboot, reimage, deallocate or start ``node`` on a worker thread (see service.work.Runtime)."""
        self.spawn(node_logs.agent_log, node.root, f"Node {action} requested")   # no disk write under the lock
        node_actions.restart_node(self, node, action)

    def list_files(self, directory: str, recursive: bool) -> list[FileInfo]:
        return nodefiles.list_files(directory, recursive)

    def file_info(self, directory: str, relative: str) -> FileInfo:
        return nodefiles.file_info(directory, relative)

    def read_file(self, directory: str, relative: str) -> tuple[FileInfo, bytes]:
        return nodefiles.read_file(directory, relative)

    def delete_file(self, directory: str, relative: str, recursive: bool) -> None:
        nodefiles.delete_file(directory, relative, recursive)

    def upload_node_logs(self, upload: LogUpload) -> int:
        return node_logs.start_upload(upload, self.spawn)

    def set_node_user(self, node: Node, user: NodeUser, password: str | None) -> None:
        self.node_accounts.set_user(node, user, password)

    def remove_node_user(self, node: Node, name: str) -> None:
        self.node_accounts.remove_user(node, name)

    def remote_login(self, node: Node, frontend_port: int, backend_port: int) -> tuple[str, int]:
        return self.node_accounts.remote_login(node, frontend_port, backend_port)

    def _remove_job_files(self, job: Job) -> None:
        nodes_dir = os.path.join(self.account.root, "nodes")
        for node_id in os.listdir(nodes_dir) if os.path.isdir(nodes_dir) else []:
            shutil.rmtree(os.path.join(nodes_dir, node_id, "workitems", job.id), ignore_errors=True)

    # ---- environment ----

    def node_env(self, pool_id: str, node: Node) -> dict[str, str]:
        root = node.root
        return {"AZ_BATCH_NODE_ROOT_DIR": root, "AZ_BATCH_NODE_SHARED_DIR": os.path.join(root, "shared"),
                "AZ_BATCH_NODE_STARTUP_DIR": os.path.join(root, "startup"),
                "AZ_BATCH_NODE_MOUNTS_DIR": os.path.join(root, "fsmounts"),
                "AZ_BATCH_POOL_ID": pool_id, "AZ_BATCH_NODE_ID": node.id,
                "AZ_BATCH_NODE_IS_DEDICATED": "true" if node.dedicated else "false",
                "AZ_BATCH_ACCOUNT_NAME": self.account.name, "AZ_BATCH_ACCOUNT_URL": self.account.url}

    @staticmethod
    def _apply_settings(env: dict[str, str], *setting_lists: NameValues) -> dict[str, str]:
        """``env`` with the environment settings on top, in order: a later one wins."""
        for settings in setting_lists:
            env.update(settings)
        return env

    def task_env(self, job: Job, task: Task, node: Node, task_dir: str, wd: str, nodes: list[Node],
                 shared_dir: str) -> dict[str, str]:
        """The environment of one instance of ``task`` on ``node``: AZ_BATCH_*, multi-instance variables, settings."""
        env = self.node_env(node.pool_id, node)
        env.update({"AZ_BATCH_JOB_ID": job.id, "AZ_BATCH_TASK_ID": task.id, "AZ_BATCH_TASK_DIR": task_dir,
                    "AZ_BATCH_TASK_WORKING_DIR": wd, "AZ_BATCH_CERTIFICATES_DIR": os.path.join(task_dir, "certs")})
        if job.settings.preparation is not None:
            prep_dir = os.path.join(node.root, "workitems", job.id, "job-1", job.settings.preparation_task_id)
            env.update({"AZ_BATCH_JOB_PREP_DIR": prep_dir,
                        "AZ_BATCH_JOB_PREP_WORKING_DIR": os.path.join(prep_dir, "wd")})
        if task.settings.multi_instance is not None:
            ips = [n.ip for n in nodes]
            # CCP_NODES: "N ip1 cores1 ip2 cores2 ...", the cores of the pool's VM size (one size per pool).
            pool = self.account.pools.get(node.pool_id)
            cores = vm_cores(pool.settings.vm_size) if pool is not None else 1
            env.update({"AZ_BATCH_HOST_LIST": ",".join(ips), "AZ_BATCH_NODE_LIST": ";".join(ips),
                        "AZ_BATCH_MASTER_NODE": f"{ips[0]}:6000",
                        "AZ_BATCH_IS_CURRENT_NODE_MASTER": "true" if node is nodes[0] else "false",
                        "AZ_BATCH_TASK_SHARED_DIR": shared_dir,
                        "CCP_NODES": " ".join([str(len(ips))] + [f"{ip} {cores}" for ip in ips])})
        return self._apply_settings(env, job.settings.common_environment, task.settings.environment)

    # ---- nodes ----

    def _remove_node_files(self, node: Node) -> None:
        """A node that left its pool takes its directory with it, as a removed VM its disk (its netns
        namespace, home and /tmp went already: forget_others, before this action ran)."""
        shutil.rmtree(node.root, ignore_errors=True)

    def _provision_node(self, pool: Pool, node: Node) -> None:
        try:
            self._start_node(pool, node)
        finally:
            with self.account.lock:
                gone = pool.nodes.get(node.id) is not node
            if gone:   # it left while starting: what the start-up wrote after its removal goes too
                self._remove_node_files(node)

    def _start_node(self, pool: Pool, node: Node) -> None:
        for sub in ("workitems", "shared", "startup", "fsmounts"):
            os.makedirs(os.path.join(node.root, sub), exist_ok=True)
        if self.nodes is not None and not self._start_isolated(node):
            node_logs.agent_log(node.root, "The node could not start: it is unusable", "ERROR")
            return
        node_logs.agent_log(node.root, f"Node {node.id} of pool {pool.id} started at {node.ip}")
        self.run_start_task(pool, node)

    def run_start_task(self, pool: Pool, node: Node) -> None:
        """The pool's start task on ``node`` (when it joins the pool, and after a reboot, reimage or start), then
        the node is idle (or starttaskfailed); with no start task, idle at once."""
        with self.account.lock:
            start = pool.settings.start_task   # read under the lock: a pool update may replace it
            if node.state == NodeState.LEAVING_POOL:
                return
            if start is None:
                node.set_state(NodeState.IDLE)
                return
            node.set_state(NodeState.WAITING_FOR_START_TASK if start.wait_for_success else NodeState.IDLE)
            info: dict[str, Any] = {"state": StartTaskState.RUNNING, "startTime": iso(utcnow()), "retryCount": 0}
            node.start_task_info = info   # the same dict: ``info`` is what the retries and completion update
        node_logs.agent_log(node.root, "Start task started")
        task_dir = os.path.join(node.root, "startup")
        env = self._apply_settings(dict(self.node_env(pool.id, node), AZ_BATCH_TASK_DIR=task_dir,
                                        AZ_BATCH_TASK_WORKING_DIR=os.path.join(task_dir, "wd")),
                                   start.environment)
        exit_code, failure = self._run_simple(start, node, task_dir, env,
                                              lambda: StopReason.REMOVED if node.state in node_actions.GOING_DOWN
                                              else None,
                                              lambda count: info.update(
                                                  retryCount=count, lastRetryTime=iso(utcnow())))
        with self.account.lock:
            _record_completion(info, exit_code, failure)
            if node.state == NodeState.WAITING_FOR_START_TASK:
                node.set_state(NodeState.START_TASK_FAILED if failure else NodeState.IDLE)
        node_logs.log_ended(node.root, "Start task", exit_code, failure)
        self.account.wake()

    def _start_isolated(self, node: Node) -> bool:
        """Start the node's network namespace and sshd; its address becomes the node's ipAddress."""
        assert self.nodes is not None
        started = time.monotonic()
        try:
            ip = self.nodes.start(node.id, node.root)
        except (OSError, RuntimeError) as exc:
            print(f"batch emulator: node {node.id} could not start: {exc}", file=sys.stderr, flush=True)
            with self.account.lock:
                node.set_state(NodeState.UNUSABLE)
            self.account.wake()
            return False
        if self.verbose:
            print(f"node {node.id} started at {ip} in {time.monotonic() - started:.2f} s", file=sys.stderr)
        with self.account.lock:
            node.ip = ip
        return True

    def _run_simple(self, run: NodeTask, node: Node, task_dir: str, env: dict[str, str],
                    should_stop: Callable[[], StopReason | None],
                    on_retry: Callable[[int], None]) -> tuple[int | None, dict[str, Any] | None]:
        """Run a start or job preparation task with retries; returns (exit code or None, failureInfo or None)."""
        wd = os.path.join(task_dir, "wd")
        os.makedirs(wd, exist_ok=True)
        try:
            blobio.download_resource_files(run.resource_files, wd)
        except blobio.TaskFailure as failure:
            return None, failure.info
        retries, deadline_seconds = run.max_task_retry_count, _seconds(run.max_wall_clock_time)
        attempt = 0
        while True:
            deadline = time.monotonic() + deadline_seconds if deadline_seconds else None
            try:
                proc = self.launcher.start(run.command_line, wd, env, os.path.join(task_dir, "stdout.txt"),
                                           os.path.join(task_dir, "stderr.txt"), node_id=node.id,
                                           identity=run.user_identity)
            except (OSError, ValueError) as exc:
                return None, launch_failure(exc)
            codes, reason = self.launcher.wait([proc], deadline, should_stop)
            if reason:
                return ENDED_EXIT_CODE, ENDED.get(reason, ENDED[StopReason.TERMINATE])
            if codes[0] == 0:
                return 0, None
            if retries != -1 and attempt >= retries:
                return codes[0], dict(EXIT_CODE_FAILURE)
            attempt += 1
            with self.account.lock:
                on_retry(attempt)

    # ---- job preparation ----

    def ensure_prep(self, job: Job, node: Node) -> bool:
        """Run the job's preparation task on ``node`` unless done; False if the task must not run here."""
        job_key, prep, prep_id = job.id.lower(), job.settings.preparation, job.settings.preparation_task_id
        assert prep is not None   # the caller runs this only for a job with a preparation task
        wait = prep.wait_for_success
        with self.account.lock:
            lock = self.prep_locks.setdefault((node.id, job_key), threading.Lock())
        with lock:
            with self.account.lock:
                if job_key in node.prep_succeeded:
                    return True
                if job_key in node.prep_failed:
                    return not wait
                root = f"workitems/{job.id}/job-1/{prep_id}"
                info = {"state": StartTaskState.RUNNING, "startTime": iso(utcnow()), "taskRootDirectory": root,
                        "taskRootDirectoryUrl": f"{self.account.url}/pools/{node.pool_id}/nodes/{node.id}/files/{root}",
                        "retryCount": 0}
                job.prep_runs[node.id] = {"poolId": node.pool_id, "nodeId": node.id, "info": info}
            task_dir = os.path.join(node.root, root)
            env = self.node_env(node.pool_id, node)
            env.update({"AZ_BATCH_JOB_ID": job.id, "AZ_BATCH_TASK_ID": prep_id,
                        "AZ_BATCH_TASK_DIR": task_dir, "AZ_BATCH_TASK_WORKING_DIR": os.path.join(task_dir, "wd")})
            self._apply_settings(env, job.settings.common_environment, prep.environment)
            node_logs.agent_log(node.root, f"Job preparation task {prep_id} of job {job.id} started")
            exit_code, failure = self._run_simple(
                prep, node, task_dir, env,
                lambda: StopReason.DELETE if job.state == JobState.DELETING else None,
                lambda count: info.update(retryCount=count, lastRetryTime=iso(utcnow())))
            with self.account.lock:
                _record_completion(info, exit_code, failure)
                (node.prep_failed if failure else node.prep_succeeded).add(job_key)
            node_logs.log_ended(node.root, f"Job preparation task {prep_id} of job {job.id}", exit_code, failure)
            return failure is None or not wait

    # ---- tasks ----

    def _run_task_guarded(self, job: Job, task: Task, nodes: list[Node]) -> None:
        for node in nodes:
            node_logs.agent_log(node.root, f"Task {task.id} of job {job.id} assigned to the node")
        try:
            taskrun.run_task(self, job, task, nodes)
        except Exception:   # an emulator bug must not leave the task running forever
            traceback.print_exc(file=sys.stderr)
            with self.account.lock:
                failure = {"category": ErrorCategory.SERVER_ERROR, "code": "InternalError",
                           "message": "The emulator failed while running the task; see its stderr."}
                lifecycle.complete(self.account, job, task, None, failure, [])
            self.account.wake()
        self._log_task_end(job, task, nodes)

    def _log_task_end(self, job: Job, task: Task, nodes: list[Node]) -> None:
        """The agent log's line on each of its nodes once the run is over: completed, retried or back to active."""
        with self.account.lock:
            state, ended = task.state, task.state == TaskState.COMPLETED   # else its exit code is an older run's
            exit_code = task.execution.get("exitCode") if ended else None
            failure = task.execution.get("failureInfo") if ended else None
        for node in nodes:
            node_logs.log_ended(node.root, f"Task {task.id} of job {job.id}", exit_code, failure, state)
