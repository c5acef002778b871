"""The toolkit's one error type and the scripts' exit codes: what every layer may raise, imported by all.

Exit codes of every script:
    0    done
    1    the service refused or failed (the message says why and what to do)
    2    usage or configuration error, found before any network call
    3    check_task.py --wait: a task failed, or a job's preparation task failed (the work did not succeed)
    130  interrupted (Ctrl-C)

Depends on nothing else of the repository: the leaf modules (jobs, progress, status, storage, tail, ...)
import it instead of toolkit/cli.py, which only the scripts use.
"""

import enum


class ExitStatus(enum.IntEnum):
    """A script's exit code."""
    OK = 0
    FAILED = 1
    USAGE = 2
    TASKS_FAILED = 3
    INTERRUPTED = 130


class ToolkitError(Exception):
    """A failure with a one-line message for the user and the exit code to return (toolkit.cli.run maps it)."""

    def __init__(self, message: str, exit_code: ExitStatus = ExitStatus.FAILED):
        super().__init__(message)
        self.exit_code = exit_code
