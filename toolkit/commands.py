"""The default commands of the job and its tasks, built from the settings: the preparation task's clone
(or unpacking of a packed local folder) and install, the coordination command, and the ONE place that
builds the default START_COMMAND.

Depends on nothing else of the repository (toolkit/settings.py uses it to fill in the defaults).
"""

from enum import Enum

# What the preparation task needs in the repository (the README's "Run your own program" layout).
INSTALL_SCRIPT = "demo_azure_batch/install.sh"
NODE_REQUIREMENTS = "demo_azure_batch/requirements_node.txt"
# PROGRAM's default: the MPI program the default START_COMMAND runs, a path inside the repository.
DEFAULT_PROGRAM = "demo_azure_batch/script.py"


def is_url(repository: str) -> bool:
    """Whether git reads `repository` as a URL rather than a local path: scheme://..., or the scp-like
    [user@]host:path, which git recognises only when no slash comes before the first colon."""
    if "://" in repository:
        return True
    before_colon, colon, _ = repository.partition(":")
    return bool(colon) and "/" not in before_colon


def default_cmd_prep_task(repository: str) -> str:
    """The tutorial's preparation: clone the repository, enter demo_azure_batch, run install.sh.

    It installs git first when the node has none (it runs as root, the pool's admin auto-user): git on
    the Batch Ubuntu image is likely but not documented (batch-facts §26). It clones into `repo` under
    the job preparation task's working directory (replacing an earlier clone, so a re-run after a node
    reboot works). A repository without demo_azure_batch/install.sh fails with exit code 3 and one line
    on stderr naming the file.
    """
    return ("/bin/bash -c 'set -e; "
            "command -v git >/dev/null || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install "
            "-y -q git; }; rm -rf repo; "
            f'git clone --quiet "{repository}" repo; '
            f'if [ ! -f repo/{INSTALL_SCRIPT} ]; then echo "{INSTALL_SCRIPT} not found in REPOSITORY_URL '
            f'{repository}: add it (see the README, Run your own program)" >&2; exit 3; fi; '
            "cd repo/demo_azure_batch; chmod +x install.sh; ./install.sh'")


def program_archive_name(content_sha256: str) -> str:
    """The file name of a packed local folder on the node (the preparation task's resource file)."""
    return f"program-{content_sha256}.tar.gz"


def unpack_cmd_prep_task(content_sha256: str) -> str:
    """The preparation of a local folder that create_pool_job.py packed (toolkit/package.py): unpack the
    archive, which Batch downloads next to it as a resource file, into `repo`, the clone's place (so PROGRAM
    paths are the same), then run install.sh as the clone's preparation does.

    It names the archive by its content hash, never a path of the user's machine: a changed folder is a
    changed command line, which the job's drift check (toolkit/jobs.py) tells apart. --no-same-owner: the
    files are the preparing user's (root on a node), whoever packed them.
    """
    return ("/bin/bash -c 'set -e; rm -rf repo; mkdir repo; "
            f"tar -xzf {program_archive_name(content_sha256)} -C repo --no-same-owner; "
            "cd repo/demo_azure_batch; chmod +x install.sh; ./install.sh'")


def default_coordination_command() -> str:
    """Runs on every node of the MPI task before mpirun starts: fails early if MPI is missing."""
    return "/bin/bash -c 'command -v mpirun >/dev/null && echo \"Node $AZ_BATCH_NODE_ID ready for MPI\"'"


class Fabric(Enum):
    """How the task's nodes talk MPI: TCP over eth0 (every size), or InfiniBand with HPC-X on the HPC image."""
    TCP = "tcp"
    INFINIBAND = "infiniband"


# The AZ_BATCH_* variables the ranks on the other nodes get; only the primary's environment has them otherwise.
FORWARDED_VARIABLES = ("AZ_BATCH_HOST_LIST", "AZ_BATCH_NODE_LIST", "AZ_BATCH_TASK_SHARED_DIR", "AZ_BATCH_JOB_ID",
                       "AZ_BATCH_TASK_ID")
# The task's nodes with their cores as mpirun's `ip:slots` list, in bash: $hosts, $slots (their sum), $nodes.
# Batch gives each multi-instance task CCP_NODES, "N ip1 cores1 ip2 cores2 ..." (its environment variable
# reference; Azure/bacc reads the same list as CCP_NODES_CORES); without it every host of AZ_BATCH_HOST_LIST
# counts the primary's own cores (nproc): a pool's nodes all have one VM size.
HOSTS_WITH_SLOTS = (
    "set -- ${CCP_NODES:-$CCP_NODES_CORES}; hosts=; slots=0; nodes=0; "
    "if [ $# -ge 3 ]; then shift; while [ $# -ge 2 ]; do "
    "hosts=$hosts${hosts:+,}$1:$2; slots=$((slots + $2)); nodes=$((nodes + 1)); shift 2; done; "
    "else cores=$(nproc); for host in ${AZ_BATCH_HOST_LIST//,/ }; do "
    "hosts=$hosts${hosts:+,}$host:$cores; slots=$((slots + cores)); nodes=$((nodes + 1)); done; fi; ")
# Loading HPC-X, the MPI the HPC image provides as an environment module (batch-facts §24); a node without it
# (another image on an InfiniBand size) ends the task at once, saying what to change. BATCH_NODE_MODULES_INIT
# names another modules init script than the image's (as install.sh reads it): the tests' stand-in tree.
LOAD_HPCX = (
    "{ source \"${BATCH_NODE_MODULES_INIT:-/etc/profile.d/modules.sh}\" && module load mpi/hpcx && command -v mpirun; "
    "} >/dev/null 2>&1 || "
    "{ echo \"HPC-X (module mpi/hpcx) not found on this node: an InfiniBand size needs the HPC image "
    "microsoft-dsvm/ubuntu-hpc/2404 (unset IMAGE_* and NODE_AGENT_SKU_ID and make a new pool)\" >&2; exit 3; }; ")


def default_start_command(nb_processes: int | None, program: str = DEFAULT_PROGRAM, program_args: str = "",
                          mpirun_args: str = "", fabric: Fabric = Fabric.TCP) -> str:
    """mpirun of PROGRAM (a path inside the repository) over the task's nodes, run by the pool's non-admin
    auto-user: the ONE place that builds the default START_COMMAND.

    `nb_processes` None: one process per core of the task's nodes (NB_PROCESSES unset on an InfiniBand pool).
    Each node is given to mpirun as `ip:slots`, its cores (HOSTS_WITH_SLOTS), so ranks fill a node's cores
    before the next node's: -np 4 over two 2-core nodes is 2 ranks a node by design. More processes than
    cores oversubscribe, with a warning on stderr (Open MPI refuses that unless told).

    The TCP line (Fabric.TCP) works with Open MPI 4.1 (the nodes' apt package) and with MPICH's hydra (the
    local emulator's --isolation none mode). Open MPI's settings are exported as OMPI_* variables, which
    MPICH ignores and Open MPI passes to its daemons on the other nodes:
    - OMPI_MCA_btl_tcp_if_include / oob_tcp_if_include=eth0: use only the node's own interface; a
      docker0-like bridge with one address on every node makes mpirun hang.
    - OMPI_MCA_mca_base_env_list: FORWARDED_VARIABLES (Open MPI's -x).
    - OMPI_MCA_rmaps_base_oversubscribe=1 only when oversubscribing (Open MPI 4.1's --oversubscribe).
    The InfiniBand line (Fabric.INFINIBAND, on the HPC image) loads HPC-X and runs over the fabric with UCX:
    `-x UCX_TLS=rc -x UCX_NET_DEVICES=mlx5_ib0:1 -x LD_LIBRARY_PATH` (HPC-X 2.7.4 and later need the library
    path passed), `--map-by ppr:K:node --bind-to core` (K: the processes per node), no TCP interface
    pinning; FORWARDED_VARIABLES go as -x too (Open MPI 5 ignores some OMPI_MCA_* variables).
    `cd "$AZ_BATCH_TASK_SHARED_DIR"`: mpirun's directory is the ranks' directory on every node, and
    this one exists on all of them and is writable by the task's user (the primary's wd is not on
    the others; the preparation task's clone is root's, read-only to the task). The program is
    addressed by its absolute path in that clone, the same on every node; a .py file runs with
    `python3 -m mpi4py` from PATH (the system's on a node, the venv's in the emulator's none mode),
    anything else is executed. `-m mpi4py`: an uncaught exception on one rank calls MPI_Abort, which
    ends every rank in seconds with the traceback on stderr; with plain `python3`, the crashing rank
    waits in MPI_Finalize at exit for ranks that wait for it, until the task's wall clock (N billed
    nodes for TASK_MAX_WALL_CLOCK_MINUTES).
    MPIRUN_ARGS (`mpirun_args`, e.g. `--bind-to core`) go after the toolkit's own options, before the
    program: mpirun reads its options up to the program's name.
    """
    path = f'"$AZ_BATCH_JOB_PREP_WORKING_DIR/repo/{program}"'
    runner = f"python3 -m mpi4py {path}" if program.endswith(".py") else path
    count = "$slots" if nb_processes is None else str(nb_processes)
    oversubscribing = (f'if [ {count} -gt "$slots" ]; then echo "Warning: {count} MPI processes on $slots cores of '
                       '$nodes node(s): oversubscribing, which runs slower (fewer processes or more nodes: '
                       '--processes, --nodes)" >&2; over=1; else over=; fi; ')
    if fabric is Fabric.INFINIBAND:
        setup = (LOAD_HPCX + f"ppn=$(( ({count} + nodes - 1) / nodes )); map=ppr:$ppn:node; bind=core; "
                 'if [ -n "$over" ]; then map=$map:OVERSUBSCRIBE; bind=core:overload-allowed; fi; ')
        options = ("--map-by $map --bind-to $bind -x UCX_TLS=rc -x UCX_NET_DEVICES=mlx5_ib0:1 -x LD_LIBRARY_PATH "
                   + " ".join(f"-x {name}" for name in FORWARDED_VARIABLES) + " ")
    else:
        setup = ("export OMPI_MCA_btl_tcp_if_include=eth0 OMPI_MCA_oob_tcp_if_include=eth0 "
                 f'OMPI_MCA_mca_base_env_list="{";".join(FORWARDED_VARIABLES)}"; '
                 'if [ -n "$over" ]; then export OMPI_MCA_rmaps_base_oversubscribe=1; fi; ')
        options = ""
    return ("/bin/bash -c '" + HOSTS_WITH_SLOTS + oversubscribing + setup
            + f'cd "$AZ_BATCH_TASK_SHARED_DIR" && exec mpirun -np {count} --host "$hosts" ' + options
            + (f"{mpirun_args} " if mpirun_args else "") + runner
            + (f" {program_args}" if program_args else "") + "'")
