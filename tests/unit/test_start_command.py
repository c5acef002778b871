"""The default START_COMMAND run by bash as a node runs it: each node given to mpirun with its cores as slots
(from CCP_NODES, else nproc), oversubscription only with more processes than cores (and a warning), and the
InfiniBand line, which loads HPC-X from the image's environment modules.

A recording `mpirun` stands in for the real one where the test reads mpirun's arguments; the placement test
runs the real one (MPICH's hydra from the virtualenv, every "node" on this machine). The HPC-X tests use a
STAND-IN module tree (a `module` shell function in a modules init script of the test's own), not HPC-X:
what they show is the line's logic, not the fabric."""

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from toolkit.commands import Fabric, default_start_command

RECORDING_MPIRUN = """#!/bin/sh
exec "{python}" -c 'import json, os, sys; print(json.dumps({{"argv": sys.argv[1:], "env": dict(os.environ)}}))' "$@"
"""
# The stand-in modules init: `module load mpi/hpcx` puts the recording mpirun on PATH, as HPC-X's module
# puts its own; any other module fails, as a missing one does.
STAND_IN_MODULES = """module() {{
  if [ "$1" = load ] && [ "$2" = mpi/hpcx ]; then export PATH="{hpcx_bin}:$PATH" LD_LIBRARY_PATH="{hpcx_bin}/../lib"; \
return 0; fi
  echo "ERROR: Unable to locate a modulefile for '$2'" >&2; return 1
}}
"""


def run_line(command_line: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run a START_COMMAND as the node agent does: split into argv, exec'd without a shell, in a clean env."""
    (tmp_path / "shared").mkdir(exist_ok=True)
    base = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "AZ_BATCH_TASK_SHARED_DIR": str(tmp_path / "shared"),
            "AZ_BATCH_JOB_PREP_WORKING_DIR": str(tmp_path / "prep"), "AZ_BATCH_HOST_LIST": "10.0.0.4,10.0.0.5"}
    return subprocess.run(shlex.split(command_line), env={**base, **env}, capture_output=True, text=True,
                          timeout=60, check=False)


@pytest.fixture
def recording_bin(tmp_path):
    """A directory whose mpirun prints its arguments and environment as JSON."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    mpirun = bindir / "mpirun"
    mpirun.write_text(RECORDING_MPIRUN.format(python=sys.executable))
    mpirun.chmod(0o755)
    return bindir


def recorded(result: subprocess.CompletedProcess[str]) -> dict:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_each_node_is_given_with_its_cores_from_ccp_nodes(tmp_path, recording_bin):
    result = run_line(default_start_command(4), tmp_path, PATH=f"{recording_bin}:{os.environ['PATH']}",
                      CCP_NODES="2 10.0.0.4 2 10.0.0.5 2")
    call = recorded(result)
    assert call["argv"][:4] == ["-np", "4", "--host", "10.0.0.4:2,10.0.0.5:2"]
    assert "OMPI_MCA_rmaps_base_oversubscribe" not in call["env"] and result.stderr == ""
    assert call["env"]["OMPI_MCA_btl_tcp_if_include"] == "eth0"


def test_without_ccp_nodes_every_host_counts_the_primarys_cores(tmp_path, recording_bin):
    call = recorded(run_line(default_start_command(2), tmp_path, PATH=f"{recording_bin}:{os.environ['PATH']}"))
    cores = os.cpu_count() if not hasattr(os, "sched_getaffinity") else len(os.sched_getaffinity(0))
    assert call["argv"][3] == f"10.0.0.4:{cores},10.0.0.5:{cores}"


def test_more_processes_than_cores_oversubscribe_with_a_warning(tmp_path, recording_bin):
    result = run_line(default_start_command(6), tmp_path, PATH=f"{recording_bin}:{os.environ['PATH']}",
                      CCP_NODES="2 10.0.0.4 2 10.0.0.5 2")
    call = recorded(result)
    assert call["env"]["OMPI_MCA_rmaps_base_oversubscribe"] == "1"
    assert result.stderr.strip() == ("Warning: 6 MPI processes on 4 cores of 2 node(s): oversubscribing, which runs "
                                     "slower (fewer processes or more nodes: --processes, --nodes)")


def test_ranks_fill_a_nodes_cores_before_the_next_node(tmp_path):
    """The real mpirun (MPICH's hydra, HYDRA_LAUNCHER=fork: each "node" a local proxy): -np 4 over two 2-core
    nodes puts ranks 0-1 on the first and 2-3 on the second (each proxy's local ranks are 0 and 1)."""
    program = tmp_path / "prep" / "repo" / "ranks.sh"
    program.parent.mkdir(parents=True)
    program.write_text('#!/bin/sh\necho "rank $PMI_RANK local $MPI_LOCALRANKID of $MPI_LOCALNRANKS"\n')
    program.chmod(0o755)
    venv_bin = os.path.dirname(sys.executable)
    result = run_line(default_start_command(4, "ranks.sh"), tmp_path, PATH=f"{venv_bin}:{os.environ['PATH']}",
                      HYDRA_LAUNCHER="fork", CCP_NODES="2 127.0.0.1 2 127.0.0.2 2",
                      AZ_BATCH_HOST_LIST="127.0.0.1,127.0.0.2")
    assert result.returncode == 0, result.stderr
    assert sorted(result.stdout.splitlines()) == ["rank 0 local 0 of 2", "rank 1 local 1 of 2",
                                                  "rank 2 local 0 of 2", "rank 3 local 1 of 2"]


@pytest.fixture
def stand_in_hpcx(tmp_path, recording_bin):
    """A STAND-IN modules init whose mpi/hpcx module puts the recording mpirun on PATH (no real HPC-X)."""
    init = tmp_path / "modules.sh"
    init.write_text(STAND_IN_MODULES.format(hpcx_bin=recording_bin))
    return init


def test_the_infiniband_line_loads_hpcx_and_runs_one_process_per_core(tmp_path, stand_in_hpcx):
    result = run_line(default_start_command(None, mpirun_args="--report-bindings", fabric=Fabric.INFINIBAND),
                      tmp_path, BATCH_NODE_MODULES_INIT=str(stand_in_hpcx), CCP_NODES="2 10.0.0.4 120 10.0.0.5 120")
    call = recorded(result)
    argv = call["argv"]
    assert argv[:4] == ["-np", "240", "--host", "10.0.0.4:120,10.0.0.5:120"]
    assert argv[4:8] == ["--map-by", "ppr:120:node", "--bind-to", "core"]
    assert " ".join(argv).count("-x ") == 8 and "-x UCX_TLS=rc -x UCX_NET_DEVICES=mlx5_ib0:1 -x LD_LIBRARY_PATH" \
        in " ".join(argv)
    assert argv[argv.index("--report-bindings") + 1:argv.index("--report-bindings") + 4] == [
        "python3", "-m", "mpi4py"]
    assert "OMPI_MCA_btl_tcp_if_include" not in call["env"] and result.stderr == ""


def test_the_infiniband_line_with_more_processes_than_cores_oversubscribes_with_a_warning(tmp_path, stand_in_hpcx):
    result = run_line(default_start_command(6, fabric=Fabric.INFINIBAND), tmp_path,
                      BATCH_NODE_MODULES_INIT=str(stand_in_hpcx), CCP_NODES="2 10.0.0.4 2 10.0.0.5 2")
    argv = recorded(result)["argv"]
    assert argv[4:8] == ["--map-by", "ppr:3:node:OVERSUBSCRIBE", "--bind-to", "core:overload-allowed"]
    assert result.stderr.startswith("Warning: 6 MPI processes on 4 cores of 2 node(s): oversubscribing")


def test_the_infiniband_line_without_hpcx_ends_at_once_saying_which_image(tmp_path):
    no_hpcx = tmp_path / "modules.sh"
    no_hpcx.write_text('module() { echo "ERROR: Unable to locate a modulefile for \'$2\'" >&2; return 1; }\n')
    for init in (no_hpcx, tmp_path / "absent.sh"):
        result = run_line(default_start_command(4, fabric=Fabric.INFINIBAND), tmp_path,
                          BATCH_NODE_MODULES_INIT=str(init), CCP_NODES="1 10.0.0.4 4")
        assert result.returncode == 3
        assert result.stderr.strip() == (
            "HPC-X (module mpi/hpcx) not found on this node: an InfiniBand size needs the HPC image "
            "microsoft-dsvm/ubuntu-hpc/2404 (unset IMAGE_* and NODE_AGENT_SKU_ID and make a new pool)")
