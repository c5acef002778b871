"""End to end on isolated nodes: the three scripts against `python -m batch_emulator --isolation netns`
(each node a network namespace with its own address, hostname, sshd and root filesystem, a private
layer over the node image; tasks run as the Unix user their userIdentity names) and Azurite. One
emulator for the module: the job preparation's install.sh runs for real on every new node, and
installs into that node only.

Needs root, ip, unshare, the node image and the packages the nodes' install.sh installs, prefetched
into it (tools/prefetch_node_packages.sh; .ci/run does it): the nodes have no route out. Elsewhere
these tests skip saying why; under CI=true they fail instead.
"""

import json
import os
import shutil
import signal
import subprocess
import uuid
from pathlib import Path

import pytest
from azure.batch import models as m

from batch_emulator.runtime.isolation import check_available
from batch_emulator.runtime.netns_base import NODE_IMAGE, NS_PREFIX, STATE_ROOT, image_account
from tests.conftest import process_alive, wait_for
from tests.e2e.conftest import ScriptRunner, batch_client, isolated_stack, require_isolation
from tests.e2e.emulator_process import VM, start_emulator
from tools import local_stack as stack_module

PREFETCHED_DEBS = NODE_IMAGE / "var" / "cache" / "apt" / "archives"
SYSTEM_PYTHON = "/usr/bin/python3"


def _why_not() -> str | None:
    reason = check_available()
    if reason is None and not any(PREFETCHED_DEBS.glob("openmpi-bin_*.deb")):
        reason = f"no prefetched node packages in {PREFETCHED_DEBS}: run tools/prefetch_node_packages.sh as root"
    return reason


def _host_packages() -> tuple[str, str]:
    """The host's dpkg package list (name, version, state) and its system Python's packages."""
    dpkg = subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${Version} ${db:Status-Abbrev}\n"],
                          capture_output=True, text=True, check=True).stdout
    python = subprocess.run([SYSTEM_PYTHON, "-c", "import importlib.metadata as m; print(sorted("
                             "(d.metadata['Name'], d.version, str(d.locate_file(''))) for d in m.distributions()))"],
                            capture_output=True, text=True, check=True).stdout
    return dpkg, python


@pytest.fixture(scope="module")
def nodes_stack():
    require_isolation(_why_not())
    yield from isolated_stack("test-isolated-nodes")


@pytest.fixture
def nodes_run(nodes_stack, tmp_path):
    return ScriptRunner(nodes_stack, tmp_path)


def _job_dirs(stack, job_id: str) -> list[Path]:
    return sorted((stack.workdir / "batch" / "nodes").glob(f"*/workitems/{job_id}/job-1"))


def _prep_outputs(stack, job_id: str) -> list[str]:
    return [(d / "jobpreparation" / "stdout.txt").read_text() for d in _job_dirs(stack, job_id)]


def _prep_outputs_by_node(stack, job_id: str) -> dict[str, str]:
    """Node id -> its job preparation's stdout, for the nodes that prepared JOB_ID."""
    return {d.parts[-4]: (d / "jobpreparation" / "stdout.txt").read_text() for d in _job_dirs(stack, job_id)}


def _prep_logs(stack, job_id: str) -> str:
    """The job preparation's stdout and stderr on every node (for a failure message)."""
    return "".join(f"\n--- {path}:\n{path.read_text(errors='replace')[-3000:]}"
                   for d in _job_dirs(stack, job_id) for path in sorted((d / "jobpreparation").glob("std*.txt")))


def _flow(run, ids, job_suffix: str, timeout: float = 900, **env: str):
    job_id = f"{ids.job_id[:50]}-{job_suffix}"
    variables = {"NB_NODES": "3", "NB_PROCESSES": "4", **env}
    created = run("create_pool_job", "--pool_id", ids.pool_id, "--job_id", job_id, env=variables)
    assert created.returncode == 0, created.stdout + created.stderr
    sent = run("send_task", "--job_id", job_id, "--task_id", ids.task_id, env=variables)
    assert sent.returncode == 0, sent.stdout + sent.stderr
    checked = run("check_task", "--job_id", job_id, "--wait", "--verbose", "--poll_seconds", "1", env=variables,
                  timeout=timeout)
    return job_id, checked


def test_default_flow_installs_on_every_new_node_and_never_on_the_host(nodes_stack, nodes_run, ids, tmp_path):
    stack = nodes_stack
    host_before = _host_packages()
    job_id, checked = _flow(nodes_run, ids, "a")
    assert "succeeded (exit code 0)" in checked.stdout, checked.stdout + checked.stderr + _prep_logs(stack, job_id)
    output = (tmp_path / "outputs" / job_id / ids.task_id / "stdout.txt").read_text()
    # Each node is given to mpirun with its cores (standard_d2s_v5: 2): 4 ranks fill two of the three nodes.
    assert "MPI pi demo: 4 processes on 2 host(s)" in output, output
    assert "pi ~= 3.14159265" in output, output
    # The task's directories belong to the pool's non-admin user, which ran it (root would own them else).
    azbatch = image_account(NODE_IMAGE, "_azbatch").uid
    task_dirs = [d / ids.task_id for d in _job_dirs(stack, job_id) if (d / ids.task_id).is_dir()]
    assert len(task_dirs) == 3 and all(d.stat().st_uid == azbatch for d in task_dirs), task_dirs
    preps = _prep_outputs(stack, job_id)
    assert len(preps) == 3, preps
    # Every node starts from the image, without MPI, as a new VM does: each installs, from the distribution.
    assert all("Installing openmpi-bin python3-mpi4py..." in p for p in preps), preps
    assert all("MPI ready: mpirun (Open MPI)" in p and "/usr/lib/python3/dist-packages/mpi4py" in p
               for p in preps), preps
    # ... into its own layer: the host's packages, and its system Python's, are as they were.
    assert _host_packages() == host_before
    # A second job: on a node that prepared the first, everything is installed; a node that joined since
    # (autoscale may have replaced one) starts clean and installs again, as a new VM would.
    first_nodes = set(_prep_outputs_by_node(stack, job_id))
    job_id, checked = _flow(nodes_run, ids, "b")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    for node, prep in _prep_outputs_by_node(stack, job_id).items():
        expected = "nothing to do" if node in first_nodes else "Installing openmpi-bin python3-mpi4py..."
        assert expected in prep, (node, prep)


OLD_START_COMMAND = ("/bin/bash -c 'export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "
                     "OMPI_MCA_rmaps_base_oversubscribe=1; cd \"$AZ_BATCH_JOB_PREP_WORKING_DIR/repo\" && "
                     "mpirun -np 4 --host $AZ_BATCH_HOST_LIST python3 demo_azure_batch/script.py'")


def test_admin_identity_cannot_reach_the_other_nodes(nodes_stack, nodes_run, ids, tmp_path):
    """The old task identity (pool admin = root) fails as on Azure: root has no intra-pool SSH."""
    stack = nodes_stack
    import config_resources
    import send_task

    job_id = f"{ids.job_id[:50]}-root"
    created = nodes_run("create_pool_job", "--pool_id", ids.pool_id, "--job_id", job_id, env={"NB_NODES": "3"})
    assert created.returncode == 0, created.stdout + created.stderr
    env = stack_module.script_environment(stack, START_COMMAND=OLD_START_COMMAND)
    settings = config_resources.task_settings(config_resources.read_settings(env))
    task = send_task.build_task(settings, job_id, ids.task_id, 3)
    task.user_identity = m.UserIdentity(auto_user=m.AutoUserSpecification(
        scope=m.AutoUserScope.POOL, elevation_level=m.ElevationLevel.ADMIN))
    batch_client(stack).create_task(job_id, task)
    checked = nodes_run("check_task", "--job_id", job_id, "--wait", "--poll_seconds", "1", timeout=600)
    assert "FAILED (exit code" in checked.stdout, checked.stdout + checked.stderr
    stderr = (tmp_path / "outputs" / job_id / ids.task_id / "stderr.txt").read_text()
    assert "Host key verification failed" in stderr or "Permission denied" in stderr, stderr
    assert "ORTE was unable to reliably start one or more daemons" in stderr, stderr


def _cluster_tag(root: Path) -> str:
    """The tag of the emulator whose --root is ROOT (its state.json names its pid)."""
    for state in STATE_ROOT.glob("*/state.json"):
        pid = json.loads(state.read_text())["pid"]
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(root) in cmdline:
            return state.parent.name
    raise AssertionError(f"no isolated-node cluster for {root}")


def _netns_of(pid: int) -> str:
    return subprocess.run(["ip", "netns", "identify", str(pid)], capture_output=True, text=True).stdout.strip()


def _node_processes(tag: str) -> dict[str, list[str]]:
    """Command lines of every process in each node namespace of cluster TAG."""
    found: dict[str, list[str]] = {}
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
    for ns in (n for n in names if n.startswith(f"{NS_PREFIX}{tag}-n")):
        pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split()
        cmds = []
        for pid in pids:
            try:
                cmds.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip())
            except OSError:
                continue
        found[ns] = cmds
    return found


def _ranks(tag: str) -> list[tuple[int, str]]:
    """(pid, namespace) of every script.py process on the nodes of TAG."""
    ranks = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmd = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if b"script.py" in cmd and b"python3" in cmd.split(b"\0")[0]:
                ns = _netns_of(int(entry))
                if ns.startswith(f"{NS_PREFIX}{tag}-n"):
                    ranks.append((int(entry), ns))
    return ranks


def test_rank_killed_on_another_node_fails_the_task_and_leaves_nothing(nodes_stack, nodes_run, ids, tmp_path):
    stack = nodes_stack
    import config_resources

    # --map-by node: one rank a node in turn (each node has 2 slots, which 4 ranks would fill on 2 nodes).
    long_run = config_resources.default_start_command(4, mpirun_args="--map-by node").replace(
        'script.py"', 'script.py" --intervals 4000000000')
    job_id = f"{ids.job_id[:50]}-kill"
    variables = {"NB_NODES": "3", "START_COMMAND": long_run}
    assert nodes_run("create_pool_job", "--pool_id", ids.pool_id, "--job_id", job_id, env=variables).returncode == 0
    assert nodes_run("send_task", "--job_id", job_id, "--task_id", ids.task_id, env=variables).returncode == 0
    tag = _cluster_tag(stack.workdir / "batch")
    ranks = wait_for(lambda: len(r := _ranks(tag)) == 4 and r, timeout=600, what="4 ranks on the nodes")
    by_ns: dict[str, list[int]] = {}
    for pid, ns in ranks:
        by_ns.setdefault(ns, []).append(pid)
    assert len(by_ns) == 3, by_ns
    # A rank on a node where mpirun does not run (mpirun's own node holds rank 0 and another rank).
    mpirun_ns = {_netns_of(int(p)) for p in _pids_named("mpirun")}
    victim = next(pids[0] for ns, pids in by_ns.items() if ns not in mpirun_ns)
    os.kill(victim, signal.SIGKILL)
    checked = nodes_run("check_task", "--job_id", job_id, "--wait", "--poll_seconds", "1", timeout=300)
    assert "FAILED (exit code" in checked.stdout, checked.stdout + checked.stderr
    outputs = tmp_path / "outputs" / job_id / ids.task_id
    assert (outputs / "stdout.txt").is_file() and (outputs / "stderr.txt").is_file()
    wait_for(lambda: all(all(_is_service(c) for c in cmds) for cmds in _node_processes(tag).values()),
             timeout=30, what=f"only the holder and sshd of each node: {_node_processes(tag)}")


def test_a_rank_that_raises_on_another_node_ends_the_task_at_once_with_its_traceback(nodes_stack, nodes_run, ids,
                                                                                     tmp_path):
    """Open MPI over ssh between isolated nodes: rank 1 of 3 (on another node) raises; -m mpi4py's MPI_Abort
    ends every rank, so the task fails in seconds, not at its wall clock, and check_task shows the exception."""
    stack = nodes_stack
    # MPIRUN_ARGS --map-by node: one rank a node, so rank 1 is on another node than mpirun's.
    variables = {"NB_NODES": "3", "NB_PROCESSES": "3", "PROGRAM": "tests/programs/crash.py",
                 "TASK_MAX_WALL_CLOCK_MINUTES": "10", "MPIRUN_ARGS": "--map-by node"}
    job_id = f"{ids.job_id[:50]}-crash"
    assert nodes_run("create_pool_job", "--pool_id", ids.pool_id, "--job_id", job_id, env=variables).returncode == 0
    assert nodes_run("send_task", "--job_id", job_id, "--task_id", ids.task_id, env=variables).returncode == 0
    checked = nodes_run("check_task", "--job_id", job_id, "--wait", "--poll_seconds", "1", env=variables,
                        timeout=900)
    assert checked.returncode == 3, checked.stdout + checked.stderr + _prep_logs(stack, job_id)
    task = batch_client(stack).get_task(job_id, ids.task_id)
    ran = task.execution_info.end_time - task.execution_info.start_time
    assert ran.total_seconds() < 60, ran  # its wall clock is 10 minutes: MPI_Abort ended every rank
    stderr = (tmp_path / "outputs" / job_id / ids.task_id / "stderr.txt").read_text()
    assert "RuntimeError: rank 1 of 3 broke on purpose" in stderr, stderr
    assert "| RuntimeError: rank 1 of 3 broke on purpose" in checked.stdout


def _is_service(cmdline: str) -> bool:
    """A node's own processes: the namespace holder and the sshd listener."""
    return cmdline == "sleep infinity" or "[listener]" in cmdline or cmdline.startswith("/usr/sbin/sshd -D")


def _pids_named(name: str) -> list[str]:
    return subprocess.run(["pgrep", "-x", name], capture_output=True, text=True).stdout.split()


def _subnet(tag: str) -> str:
    return json.loads((STATE_ROOT / tag / "state.json").read_text())["subnet"]


def _leftovers(tag: str, subnet: str) -> list[str]:
    """What cluster TAG made that still exists: namespaces, the prohibit route, its state directory."""
    found = [n for n in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
             if n.startswith(f"{NS_PREFIX}{tag}-")]
    found += [line for line in subprocess.run(["ip", "route", "show", "table", "all"], capture_output=True,
                                              text=True).stdout.splitlines() if line.startswith(f"prohibit {subnet}")]
    if (STATE_ROOT / tag).exists():
        found.append(str(STATE_ROOT / tag))
    return found


def _start_nodes(root: Path, log, nodes: int = 2):
    proc, url = start_emulator(root, log, "--isolation", "netns")
    from azure.batch import BatchClient
    from azure.core.credentials import AzureNamedKeyCredential

    from batch_emulator import DEFAULT_ACCOUNT_KEY, DEFAULT_ACCOUNT_NAME

    client = BatchClient(url, AzureNamedKeyCredential(DEFAULT_ACCOUNT_NAME, DEFAULT_ACCOUNT_KEY), retry_total=0)
    client.create_pool(m.BatchPoolCreateOptions(id="p", vm_size="standard_d2s_v3", virtual_machine_configuration=VM,
                                                target_dedicated_nodes=nodes))
    wait_for(lambda: sum(n.state == "idle" for n in client.list_nodes("p")) == nodes, timeout=60, what="idle nodes")
    ips = sorted(n.ip_address for n in client.list_nodes("p"))
    tag = _cluster_tag(root)
    return proc, tag, _subnet(tag), ips


def test_nothing_left_after_stop_or_after_a_kill_and_restart(tmp_path):
    require_isolation(_why_not())
    root = stack_module.isolated_workdir(f"test-leftovers-{uuid.uuid4().hex[:8]}")
    route_before = subprocess.run(["ip", "route"], capture_output=True, text=True).stdout
    proc = None
    try:
        with open(tmp_path / "emulator.log", "w") as log:
            proc, tag, subnet, ips = _start_nodes(root, log)
            assert not any(ip.startswith("127.") for ip in ips), ips   # the nodes' own addresses
            holders = [p for ns in _node_processes(tag) for p in
                       subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split()]
            proc.kill()   # SIGKILL: no clean-up
            proc.wait()
            assert _leftovers(tag, subnet), "a killed emulator leaves its nodes (the next start removes them)"
            proc, new_tag, new_subnet, _ = _start_nodes(root, log)
            # The new instance may take the subnet the old one had (and its own prohibit route for it).
            assert _leftovers(tag, "none" if new_subnet == subnet else subnet) == []
            wait_for(lambda: not any(process_alive(int(p)) for p in holders), timeout=10, what="old nodes' end")
            assert not Path(f"/run/batch-emulator-nodes/{tag}").exists()
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
            assert _leftovers(new_tag, new_subnet) == [], _leftovers(new_tag, new_subnet)
        assert subprocess.run(["ip", "route"], capture_output=True, text=True).stdout == route_before
    finally:
        if proc is not None and proc.poll() is None:   # a failed check: stop it cleanly all the same
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
        shutil.rmtree(root, ignore_errors=True)
