"""An MPI program for the result-file tests (OUTPUT_FILES): rank 0 gathers a line from every rank and
writes the results in its working directory, the directory OUTPUT_FILES patterns are relative to.

    python3 -m mpi4py tests/programs/write_results.py [--fail]

It writes results/a.txt (one line per rank) and results/sub/b.bin (bytes 0..255, four times, then the
number of ranks); with --fail, rank 0 then exits with 3, after writing: a failed run's files come back too.
Only rank 0 writes: ranks on other nodes have the same directory on another machine, never uploaded.
"""

import sys
from pathlib import Path

from mpi4py import MPI

comm = MPI.COMM_WORLD
lines = comm.gather(f"rank {comm.Get_rank()} of {comm.Get_size()}", root=0)
if comm.Get_rank() == 0:
    assert lines is not None
    Path("results/sub").mkdir(parents=True, exist_ok=True)
    Path("results/a.txt").write_text("\n".join(lines) + "\n")
    Path("results/sub/b.bin").write_bytes(bytes(range(256)) * 4 + bytes([comm.Get_size()]))
comm.barrier()
if "--fail" in sys.argv[1:] and comm.Get_rank() == 0:
    print("results written; failing on purpose", file=sys.stderr)
    sys.exit(3)
