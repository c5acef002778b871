"""Tools around the toolkit, not part of it: the local stand-in for Azure (local_stack) and `make demo` (demo).

Run them from the repository root as modules (python -m tools.demo); the tests import local_stack directly
(pytest's pythonpath holds tools/).
"""
