"""The MPI program the task runs: pi by numerical integration, split across ranks.

    mpirun -np 4 python3 demo_azure_batch/script.py [--intervals 2000000]

pi = integral from 0 to 1 of 4 / (1 + x^2) dx, by the midpoint rule. Rank r sums
the intervals r, r + size, r + 2*size, ...; the partial sums are added up with
an MPI reduce, and rank 0 prints the result, its error, the number of processes
and the hosts that took part (and the task's Batch nodes, when run by Batch).
"""

import argparse
import math
import os
import socket
import sys
import time

from mpi4py import MPI


def partial_sum(rank: int, size: int, intervals: int) -> float:
    width = 1.0 / intervals
    total = 0.0
    for i in range(rank, intervals, size):
        x = (i + 0.5) * width
        total += 4.0 / (1.0 + x * x)
    return total * width


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--intervals", type=int, default=2_000_000, help="number of integration intervals")
    args = parser.parse_args(argv)

    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    started = time.perf_counter()
    pi = comm.reduce(partial_sum(rank, size, args.intervals), op=MPI.SUM, root=0)
    hosts = comm.gather(socket.gethostname(), root=0)
    elapsed = time.perf_counter() - started
    if rank == 0:
        distinct = sorted(set(hosts))
        print(f"MPI pi demo: {size} processes on {len(distinct)} host(s): {', '.join(distinct)}")
        if os.environ.get("AZ_BATCH_HOST_LIST"):
            print(f"Batch nodes of this task: {os.environ['AZ_BATCH_HOST_LIST']}")
        print(f"pi ~= {pi:.15f} error={abs(pi - math.pi):.2e} intervals={args.intervals} seconds={elapsed:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
