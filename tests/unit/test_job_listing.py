"""When a check_task.py round lists a job's tasks (toolkit.status.needs_listing): every case of counts,
record, --wait and --json, as a table."""

import pytest
from azure.batch import models

from toolkit.status import needs_listing


def counts(active=0, running=0, completed=0):
    return models.BatchTaskCounts(active=active, running=running, completed=completed, succeeded=completed, failed=0)


@pytest.mark.parametrize("active, running, completed, recorded, wait, list_always, listed, why", [
    (0, 0, 3, 3, False, False, False, "finished, every completed task recorded: nothing to ask"),
    (0, 0, 3, 3, True, False, False, "the same with --wait"),
    (0, 0, 3, 3, False, True, True, "--json reports every task's state"),
    (0, 0, 3, 2, False, False, True, "a completed task not recorded: to download"),
    (0, 0, 2, 3, False, False, True, "a recorded task gone from the job: the listing says which"),
    (0, 0, 0, 0, False, False, False, "an empty job, once: nothing to list"),
    (0, 0, 0, 0, True, False, True, "an empty job with --wait: the listing closes it"),
    (0, 1, 0, 0, False, False, True, "a running task: its line"),
    (0, 1, 2, 2, True, False, True, "a running task beside recorded ones"),
    (2, 0, 0, 0, False, False, False, "only waiting tasks: their count says it all"),
    (2, 0, 0, 0, True, False, False, "the same with --wait"),
    (2, 0, 0, 0, False, True, True, "--json, waiting tasks"),
    (1, 0, 1, 0, False, False, True, "waiting tasks and a completed one to download"),
    (1, 0, 1, 1, True, False, False, "waiting tasks and a recorded one"),
])
def test_a_round_lists_the_tasks_only_when_that_tells_something(active, running, completed, recorded, wait,
                                                                list_always, listed, why):
    assert needs_listing(counts(active, running, completed), recorded, wait, list_always) is listed, why
