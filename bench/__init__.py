"""Benchmarks of the toolkit's scripts against the local stack; run one as a module from the repository root
(python -m bench.bench_scripts)."""
