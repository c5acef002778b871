"""An MPI program for the tests and bench/bench_crash.py: one rank raises while the others wait in a collective.

    python3 -m mpi4py tests/programs/crash.py [RANK]     (RANK: the rank that raises, default 1)

Under plain `python3` the other ranks would wait at the barrier, and the crashing rank in MPI_Finalize
at exit, until the task's wall clock; `-m mpi4py` turns the uncaught exception into MPI_Abort.
"""

import sys

from mpi4py import MPI

comm = MPI.COMM_WORLD
crashing = int(sys.argv[1]) if len(sys.argv) > 1 else 1
if comm.Get_rank() == crashing:
    raise RuntimeError(f"rank {crashing} of {comm.Get_size()} broke on purpose")
comm.barrier()
print(f"rank {comm.Get_rank()} passed the barrier")
