"""--isolation none end to end: every emulated node is this machine, and what a job's install.sh installs
stays on the node, in its own virtualenv (batch_emulator/runtime/node_python.py), never in the project's .venv.

The repository the nodes clone holds the real install.sh and a requirements_node.txt naming probe-pkg==1.0;
pip on the nodes is offline, finding it in a wheel directory of this module (the emulator's environment,
which its nodes' processes inherit, names it), so nothing leaves the machine.
"""

import re
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import ScriptRunner, batch_client
from tests.git_repos import make_repository
from tests.unit.test_node_python import PROBE_REQUIREMENT, probe_in_project_venv, probe_wheel
from tools import local_stack as stack_module

REPO_ROOT = Path(__file__).resolve().parents[2]
POLL = ("--poll_seconds", "0.3")
# The program the task runs: it imports what requirements_node.txt names, and says where from.
USES_PROBE = '''"""Rank 0 prints where probe_pkg (requirements_node.txt) and python3 come from on its node."""
import sys

import probe_pkg
from mpi4py import MPI

if MPI.COMM_WORLD.Get_rank() == 0:
    print(f"probe_pkg {probe_pkg.VERSION} from {probe_pkg.__file__}; python3 prefix {sys.prefix}")
'''
PROBE_LINE = re.compile(r"^probe_pkg 1\.0 from (\S+); python3 prefix (\S+)$", re.MULTILINE)


@pytest.fixture(scope="module")
def offline_pip_stack(tmp_path_factory):
    """A stack whose emulator, and so every process of its nodes, runs pip offline from a wheel directory
    holding probe-pkg 1.0 (the emulator starts with this process's environment)."""
    wheels = probe_wheel(tmp_path_factory.mktemp("wheels")).parent
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PIP_NO_INDEX", "1")
        patch.setenv("PIP_FIND_LINKS", str(wheels))
        patch.setenv("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        try:
            with stack_module.start_stack(tmp_path_factory.mktemp("host-node-stack")) as stack:
                yield stack
        except stack_module.LocalStackError as error:
            pytest.fail(str(error), pytrace=False)


def repository_with_requirement(path: Path) -> Path:
    """A repository of the README's layout: the real install.sh and script.py, a requirements_node.txt
    naming probe-pkg==1.0, and a program that imports it."""
    demo = REPO_ROOT / "demo_azure_batch"
    return make_repository(path, {
        "demo_azure_batch/install.sh": (demo / "install.sh").read_text(),
        "demo_azure_batch/script.py": (demo / "script.py").read_text(),
        "demo_azure_batch/requirements_node.txt": f"# what uses_probe.py needs\n{PROBE_REQUIREMENT}\n",
        "demo_azure_batch/uses_probe.py": USES_PROBE,
    })


def test_a_jobs_requirements_install_into_each_nodes_venv_not_the_projects(offline_pip_stack, ids, tmp_path):
    assert probe_in_project_venv() == []
    run_script = ScriptRunner(offline_pip_stack, tmp_path)
    repository = repository_with_requirement(offline_pip_stack.workdir / "repositories" / ids.job_id)
    env = {"REPOSITORY_URL": str(repository), "PROGRAM": "demo_azure_batch/uses_probe.py"}

    created = run_script("create_pool_job.py", "--pool_id", ids.pool_id, "--job_id", ids.job_id, env=env)
    assert created.returncode == 0, created.stdout + created.stderr
    sent = run_script("send_task.py", "--job_id", ids.job_id, "--task_id", ids.task_id, env=env)
    assert sent.returncode == 0, sent.stdout + sent.stderr
    checked = run_script("check_task.py", "--job_id", ids.job_id, "--wait", *POLL, env=env, timeout=300)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"Job [{ids.job_id}]: active 0, running 0, completed 1 (succeeded 1, failed 0)" in checked.stdout, \
        checked.stdout

    stdout = (tmp_path / "outputs" / ids.job_id / ids.task_id / "stdout.txt").read_text()
    found = PROBE_LINE.search(stdout)
    assert found, stdout
    module, prefix = Path(found.group(1)), Path(found.group(2))
    # The primary node's own venv, in its node directory under the emulator's root.
    assert prefix.parts[-2:] == ("volatile", "python") and prefix.is_relative_to(offline_pip_stack.workdir), prefix
    assert module.is_relative_to(prefix / "lib"), module
    assert prefix != Path(sys.prefix)
    # Each node installed it into its own venv: none found what another had installed.
    client = batch_client(offline_pip_stack)
    preparations = list(client.list_job_preparation_and_release_task_status(ids.job_id))
    assert len(preparations) == 2   # NB_NODES
    for preparation in preparations:
        info = preparation.job_preparation_task_execution_info
        assert info.exit_code == 0, preparation.node_id
        printed = b"".join(client.download_node_file(ids.pool_id, preparation.node_id,
                                                     f"{info.task_root_directory}/stdout.txt")).decode()
        assert "Installing Python packages from requirements_node.txt...\n" in printed, printed
        assert "MPI ready: " in printed, printed
    assert probe_in_project_venv() == []
