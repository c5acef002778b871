"""How long a cold isolated node's preparation takes: demo_azure_batch/install.sh with MPI for Python from the
distribution (python3-mpi4py with openmpi-bin, today's requirements_node.txt) beside the source build it replaced
(a requirements_node.txt naming mpi4py==4.1.2: compiler, headers and a build of mpi4py on every node).

    sudo .venv/bin/python -m bench.bench_node_prep [--runs 1]    (from the repository root, as root)

Each run starts a new isolated node (tools/build_node_image.sh's image on a fresh private layer, as the
emulator's --isolation netns does for every node a pool gets: nothing installed yet) and times install.sh
run in it as root, the job preparation's user, from the node's start to its exit. Needs the node image and
the nodes' packages, with the source build's too:

    sudo tools/prefetch_node_packages.sh --requirements bench/requirements_source_build.txt

It asserts nothing: it prints what it measured.
"""

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from batch_emulator.runtime.isolation import NODE_PACKAGES, NetnsNodes
from batch_emulator.runtime.netns_base import check_available

REPO_ROOT = Path(__file__).resolve().parent.parent
SOURCE_BUILD = REPO_ROOT / "bench" / "requirements_source_build.txt"
PREFETCH_HINT = "sudo tools/prefetch_node_packages.sh --requirements bench/requirements_source_build.txt"
WORK_ROOT = Path("/var/tmp/mpi-batch-toolkit")   # not /tmp: each node has its own


@dataclass(frozen=True)
class Preparation:
    seconds: float
    exit_code: int
    last_line: str


def prepare_cold_node(nodes: NetnsNodes, requirements: Path, work: Path, name: str) -> Preparation:
    """Start a new node and run install.sh (with REQUIREMENTS as requirements_node.txt) in it as root."""
    program = work / f"{name}-program"
    shutil.copytree(REPO_ROOT / "demo_azure_batch", program / "demo_azure_batch")
    shutil.copyfile(requirements, program / "demo_azure_batch" / "requirements_node.txt")
    node_root = work / f"{name}-node"
    node_root.mkdir()
    started = time.monotonic()
    nodes.start(name, str(node_root))
    log = node_root / "install.log"
    with open(log, "wb") as out:
        proc = nodes.run(name, ["bash", str(program / "demo_azure_batch" / "install.sh")], "root", {},
                         str(node_root), out, out)
        code = proc.wait()
    nodes.end_run(proc)
    seconds = time.monotonic() - started
    nodes.forget_others(set())   # the node leaves: its layer goes with it
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return Preparation(seconds, code, lines[-1] if lines else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1, help="cold nodes per variant (default 1)")
    args = parser.parse_args(argv)
    reason = check_available()
    if reason:
        print(f"bench_node_prep: isolated nodes cannot run here: {reason}", file=sys.stderr)
        return 2
    if not any(Path(NODE_PACKAGES).glob("mpi4py-4.1.2*")):
        print(f"bench_node_prep: no mpi4py 4.1.2 source in {NODE_PACKAGES}: run {PREFETCH_HINT}", file=sys.stderr)
        return 2
    variants = [("source build (requirements: mpi4py==4.1.2)", SOURCE_BUILD),
                ("distribution (python3-mpi4py)", REPO_ROOT / "demo_azure_batch" / "requirements_node.txt")]
    WORK_ROOT.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-node-prep-", dir=WORK_ROOT))
    work.chmod(0o755)
    results: dict[str, list[Preparation]] = {}
    try:
        nodes = NetnsNodes(node_packages=NODE_PACKAGES, shares=[str(work)])
        try:
            for run in range(args.runs):
                for index, (label, requirements) in enumerate(variants):
                    done = prepare_cold_node(nodes, requirements, work, f"r{run}v{index}")
                    results.setdefault(label, []).append(done)
                    print(f"  {label}: {done.seconds:.1f} s, exit {done.exit_code}: {done.last_line[:100]}",
                          flush=True)
        finally:
            nodes.shutdown()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nA cold isolated node's preparation (install.sh as root, from node start), {args.runs} run(s) each:")
    medians = {label: statistics.median(p.seconds for p in runs) for label, runs in results.items()}
    for label, median in medians.items():
        print(f"  {label:<45} {median:7.1f} s")
    before, after = medians[variants[0][0]], medians[variants[1][0]]
    print(f"  {'speed-up':<45} {before / after:7.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
