"""delete_pool_job.py's plan: the actions that confirmation, the dry run and the run itself all use."""

import argparse

import delete_pool_job
from delete_pool_job import Found, make_plan


def args(job_id=None, pool_id=None, task_id=None):
    return argparse.Namespace(job_id=job_id, pool_id=pool_id, task_id=task_id)


def test_the_job_goes_before_its_pool_and_each_has_its_request():
    found = Found(job_state="active", job_pool="p1", job_tasks="0 running, 0 waiting, 1 completed",
                  pool_state="active", pool_nodes=2)
    plan = make_plan(found, args("j1", "p1"))
    assert [action.request for action in plan.actions] == [("DELETE", "/jobs/j1"), ("DELETE", "/pools/p1")]
    assert plan.actions[0].summary.startswith("delete job [j1] (active, on pool [p1]; tasks: 0 running")
    assert plan.actions[1].summary == "delete pool [p1] (2 node(s) now): its nodes go"
    assert plan.notes == ()


def test_what_is_already_being_deleted_is_waited_for_without_a_request():
    plan = make_plan(Found(job_state="deleting", pool_state=None), args("j1", "p1"))
    assert [(action.summary, action.request) for action in plan.actions] == [
        ("wait for job [j1], which is already being deleted", None)]
    assert plan.notes == (f"No pool [p1] in this account: already deleted, or a mistyped id "
                          f"({delete_pool_job.LIST_POOLS}).",)


def test_a_task_is_terminated_only_while_it_has_not_completed():
    running = make_plan(Found(job_state="active", task_state="running"), args("j1", task_id="t1"))
    assert [action.request for action in running.actions] == [("POST", "/jobs/j1/tasks/t1/terminate")]
    completed = make_plan(Found(job_state="active", task_state="completed"), args("j1", task_id="t1"))
    assert completed.actions == ()
    assert completed.notes == ("Task [t1] of job [j1] has already completed: nothing to terminate.",)
