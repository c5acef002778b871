"""End-to-end tests: the scripts as subprocesses against the local stack (tools/local_stack.py)."""
