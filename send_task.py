"""Send an MPI task to a job.

    python3 send_task.py --job_id JOB_ID --task_id TASK_ID [--nodes N] [--processes N] [--dry_run [DIR]]
                         [--program PATH] [--args "ARGS"]   (PROGRAM and PROGRAM_ARGS for this task)
    python3 send_task.py --job_id JOB_ID --task_id TASK_ID --sweep FILE    (one task per line of FILE)
    python3 send_task.py --job_id JOB_ID --retry TASK_ID    (run a failed task again, once you fixed why)

The task is a multi-instance task: the coordination command (COORDINATION_COMMAND)
runs on each of its nodes, then the primary node runs the start command
(START_COMMAND; by default `mpirun` of PROGRAM, demo_azure_batch/script.py
unless set, with NB_PROCESSES processes, or --processes, over the task's nodes, each with as
many slots as it has cores, with the extra mpirun options MPIRUN_ARGS if set; on a pool of
InfiniBand nodes, HPC-X over the fabric with one process per core unless NB_PROCESSES or
--processes says otherwise). When the task completes, its
stdout.txt and stderr.txt are uploaded to the blob container under
JOB_ID/TASK_ID/, with the result files OUTPUT_FILES names (paths kept, relative to
the program's directory $AZ_BATCH_TASK_SHARED_DIR), whether it succeeded or not.

Before adding the task it checks what can be checked: the ids, the settings and
the container SAS (allows writing, lasts longer than the task may run), that
the job exists and is active, that its pool can run MPI tasks and can have as
many nodes as asked (not when its core quota is used up), and that the blob
container exists (by listing it, which a racwl SAS and the per-use SAS made from
AZURE_STORAGE_KEY allow; a SAS without list permission cannot tell, and the
script says so and goes on).

--sweep FILE adds one task per line of FILE that is neither empty nor a comment (#), the line
being that task's PROGRAM_ARGS, with ids TASK_ID-1 .. TASK_ID-N (zero-padded to N's width), 100
tasks a request. Run again, it adds only the tasks still missing; a task of the job that has one
of its ids but is not part of this sweep stops it before anything is added.

--retry TASK_ID reactivates a task that failed, after you fixed what made it fail (its program, the
repository, a setting): the service runs it again, same id and command line; its new outputs replace
the old ones. A task that is still waiting or running, or that succeeded, is refused with the reason.

--dry_run makes the same checks (reads only) and prints the request it would
send with its JSON body (SAS signature redacted); it adds nothing. --dry_run DIR
also writes the body, whole, to DIR/task-TASK_ID.json (0600: it holds the upload
SAS), which `az batch task create --job-id JOB_ID --json-file` takes as it is. A
job that does not exist yet is said, and the body is written all the same.

Exit codes: 0 task added, 1 the service refused, 2 bad option or configuration, 130 interrupted.
"""

from __future__ import annotations

import argparse
import datetime
import sys
import uuid
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from toolkit.batch import (
    RETRY_POST,
    SUBMISSION_MARK,
    error_code,
    made_by,
    make_batch_client,
    wire_value,
)
from toolkit.checked import TaskSettings, batch_access, task_settings
from toolkit.cli import check_id, make_parser, run
from toolkit.commands import Fabric
from toolkit.dryrun import add_dry_run_option, show_request, write_body
from toolkit.errors import ExitStatus, ToolkitError
from toolkit.outputs import STD_FILES_PATTERN, result_file_upload
from toolkit.settings import Settings, load_settings
from toolkit.storage import check_container_exists, check_container_sas, container_sas_url
from toolkit.sweep import SweepTask, add_sweep_tasks, batches, clashes_and_missing, read_sweep
from toolkit.targets import check_job_and_pool, describe_fabric, warn_idle_nodes
from toolkit.values import check_program, sas_token_expiry

if TYPE_CHECKING:
    from azure.batch import BatchClient, models

# Uploading stdout/stderr after the task ends takes a little while; the SAS must outlive that too.
UPLOAD_MARGIN = datetime.timedelta(minutes=15)
# The end of --help: what the default START_COMMAND is made of, and what replaces each part.
KNOBS_NOTE = ("The default START_COMMAND runs\n"
              "    mpirun -np NB_PROCESSES --host IP:CORES,... MPIRUN_ARGS PROGRAM PROGRAM_ARGS\n"
              "(MPIRUN_ARGS: extra mpirun options, e.g. --bind-to core). --processes, --program\n"
              "and --args replace NB_PROCESSES, PROGRAM and PROGRAM_ARGS for this task. On a pool\n"
              "of InfiniBand nodes (HB, HC, HX, ND... sizes) it runs HPC-X over the fabric, one\n"
              "process per core unless NB_PROCESSES or --processes is given.")


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser("send_task.py", "Send an MPI (multi-instance) task to a job.", epilog=KNOBS_NOTE)
    parser.add_argument("--job_id", required=True, help="id of the job (created by create_pool_job.py)")
    parser.add_argument("--task_id", help="id of the new task, unique in the job (required unless --retry)")
    parser.add_argument("--nodes", type=int, help="number of nodes the MPI task runs on (default: NB_NODES, 2)")
    parser.add_argument("--processes", type=int,
                        help="number of MPI processes of the default START_COMMAND (default: NB_PROCESSES, 4)")
    parser.add_argument("--program", metavar="PATH",
                        help="the program this task runs, a path inside the repository (default: PROGRAM, "
                             "demo_azure_batch/script.py)")
    parser.add_argument("--args", metavar="\"ARGS\"",
                        help="the program's arguments for this task, in quotes (default: PROGRAM_ARGS); "
                             "one option alone: --args=--verbose")
    parser.add_argument("--sweep", metavar="FILE",
                        help="a parameter sweep: one task per line of FILE (the line is its PROGRAM_ARGS), ids "
                             "TASK_ID-1 .. TASK_ID-N; re-running adds only the missing tasks")
    parser.add_argument("--retry", metavar="TASK_ID",
                        help="run this failed task of --job_id again (reactivate it), once you fixed why it failed")
    add_dry_run_option(parser, "add nothing")
    return parser


def build_task(settings: TaskSettings, job_id: str, task_id: str, nodes: int,
               submission_id: str = "", command_line: str | None = None) -> models.BatchTaskCreateOptions:
    """The multi-instance task; submission_id marks this run's request (see add_task)."""
    from azure.batch import models

    # The pool-scope non-admin auto-user (_azbatch on Linux): the same account on every node, and the one
    # Batch sets up SSH between nodes for, so mpirun reaches them. Root (admin) gets no such set-up.
    mpi_user = models.UserIdentity(auto_user=models.AutoUserSpecification(
        scope=models.AutoUserScope.POOL, elevation_level=models.ElevationLevel.NON_ADMIN))
    container_url = container_sas_url(settings.storage, "cw", upload_window(settings))

    def upload(file_pattern: str, path: str) -> models.OutputFile:
        """Uploaded when the task completes, success or failure: a failed run's files help find out why."""
        return models.OutputFile(
            file_pattern=file_pattern,
            destination=models.OutputFileDestination(container=models.OutputFileBlobContainerDestination(
                container_url=container_url, path=path)),
            upload_options=models.OutputFileUploadConfiguration(
                upload_condition=models.OutputFileUploadCondition.TASK_COMPLETION))

    # stdout.txt and stderr.txt, then one OutputFile per OUTPUT_FILES pattern, all under JOB/TASK/ (the result
    # files keep their paths: toolkit.outputs.result_file_upload says how the pattern and path are made).
    uploads = [upload(STD_FILES_PATTERN, f"{job_id}/{task_id}"),
               *(upload(*result_file_upload(pattern, f"{job_id}/{task_id}")) for pattern in settings.output_files)]
    return models.BatchTaskCreateOptions(
        id=task_id,
        command_line=command_line or settings.start_command,
        multi_instance_settings=models.MultiInstanceSettings(
            number_of_instances=nodes, coordination_command_line=settings.coordination_command),
        user_identity=mpi_user,
        constraints=models.BatchTaskConstraints(
            max_wall_clock_time=datetime.timedelta(minutes=settings.task_max_wall_clock_minutes),
            max_task_retry_count=0),
        output_files=uploads,
        environment_settings=[models.EnvironmentSetting(name=SUBMISSION_MARK, value=submission_id)],
    )


def check_sas_for_upload(settings: TaskSettings) -> None:
    """The container SAS must allow writing and must not expire before the task's outputs are uploaded."""
    check_container_sas(settings.storage, "w", "the task's uploads")
    expiry = sas_token_expiry(settings.storage.sas_token)
    if settings.storage.key or expiry is None:
        return
    needed = datetime.datetime.now(datetime.timezone.utc) + upload_window(settings)
    if expiry < needed:
        print(f"Warning: the container SAS expires at {expiry:%Y-%m-%d %H:%M} UTC, before the task's time limit "
              f"({settings.task_max_wall_clock_minutes} min) is over: its outputs may fail to upload.")


def upload_window(settings: TaskSettings) -> datetime.timedelta:
    """How long the task's upload SAS must stay valid: its time limit plus the upload itself."""
    return datetime.timedelta(minutes=settings.task_max_wall_clock_minutes) + UPLOAD_MARGIN


def add_task(client: BatchClient, job_id: str, task: models.BatchTaskCreateOptions, submission_id: str) -> None:
    """Add the task, retrying safely: a TaskExists that carries our submission id is our own earlier attempt."""
    from azure.core.exceptions import ResourceExistsError

    try:
        client.create_task(job_id, task, **RETRY_POST)
    except ResourceExistsError as err:
        if error_code(err) == "TaskIdSameAsJobPreparationTask":
            raise ToolkitError(f"Task id [{task.id}] is the job preparation task's id: choose another --task_id.",
                               ExitStatus.USAGE) from None
        if error_code(err) != "TaskExists":
            raise
        existing = client.get_task(job_id, task.id, select=["id", "environmentSettings"])
        if not made_by(existing.environment_settings, submission_id):
            raise ToolkitError(f"Task [{task.id}] already exists in job [{job_id}]: "
                               "choose another --task_id.") from None


def with_knobs(settings: TaskSettings, program: str | None, program_args: str | None,
               sweep: bool = False) -> TaskSettings:
    """The settings with --program and --args as PROGRAM and PROGRAM_ARGS, checked as the variables are.
    They and MPIRUN_ARGS go into the default START_COMMAND, so none of them can apply when START_COMMAND
    is set (refused, like --processes); --args with --sweep is refused too: each sweep line is the args."""
    given = [name for name, value in (("--program", program), ("--args", program_args)) if value is not None]
    ignored = [*given, "MPIRUN_ARGS"] if settings.mpirun_args else given
    if ignored and not settings.start_command_is_default:
        raise ToolkitError(f"{' and '.join(ignored)} go into the default START_COMMAND, but START_COMMAND is "
                           "set: put them in START_COMMAND, or unset it and use PROGRAM. Nothing was added.",
                           ExitStatus.USAGE)
    if sweep and program_args is not None:
        raise ToolkitError("--args and --sweep both give PROGRAM_ARGS (each line of the sweep file is one "
                           "task's): give one of them. Nothing was added.", ExitStatus.USAGE)
    if not given:
        return settings
    if program == "":
        raise ToolkitError("--program is empty: give the program's path inside the repository, e.g. "
                           "src/app.py. Nothing was added.", ExitStatus.USAGE)
    own = replace(settings, program=settings.program if program is None else program,
                  program_args=settings.program_args if program_args is None else program_args)
    problems: dict[str, str] = {}
    check_program(own.program, own.program_args, problems)
    for variable, option in (("PROGRAM", "--program"), ("PROGRAM_ARGS", "--args")):
        if variable in problems:
            raise ToolkitError(f"{option} {problems[variable]}. Nothing was added.", ExitStatus.USAGE)
    return replace(own, start_command=own.start_command_for(own.nb_processes))   # shown before the pool is known


def start_command(settings: TaskSettings, processes: int | None, fabric: Fabric = Fabric.TCP) -> str:
    """The task's command line: START_COMMAND, or the default one for the pool's fabric with --processes
    processes (checked before any request: call it once without the fabric to check the option)."""
    if processes is not None and processes < 1:
        raise ToolkitError(f"--processes is {processes}; an MPI program needs 1 process or more.", ExitStatus.USAGE)
    if processes is not None and not settings.start_command_is_default:
        raise ToolkitError("--processes sets mpirun -np of the default START_COMMAND, but START_COMMAND is set: "
                           "change -np there, or unset START_COMMAND and use PROGRAM.", ExitStatus.USAGE)
    if not settings.start_command_is_default:
        return settings.start_command
    return settings.start_command_for(settings.processes_for(fabric, processes), fabric)


def retry_task(args: argparse.Namespace, configured: Settings) -> int:
    """--retry TASK_ID: reactivate a task that failed, refusing (one line) what the service would refuse."""
    from azure.core.exceptions import ResourceNotFoundError

    check_id("--retry", args.retry)
    options = (("--task_id", args.task_id), ("--sweep", args.sweep), ("--program", args.program),
               ("--args", args.args), ("--nodes", args.nodes), ("--processes", args.processes))
    given = [option for option, value in options if value is not None]
    if given:
        raise ToolkitError(f"--retry runs the task again as it was sent: drop {', '.join(given)}.", ExitStatus.USAGE)
    access = load_settings(configured, batch_access)
    client = make_batch_client(access)
    try:
        job = client.get_job(args.job_id, select=["id", "state"])
        task = client.get_task(args.job_id, args.retry, select=["id", "state", "executionInfo"])
    except ResourceNotFoundError as err:
        what = f"Job [{args.job_id}]" if error_code(err) == "JobNotFound" else \
            f"Task [{args.retry}] of job [{args.job_id}]"
        raise ToolkitError(f"{what} does not exist: nothing to retry (python3 check_task.py lists the jobs and "
                           "their tasks).") from None
    problem = retry_problem(wire_value(job.state), task)
    if problem:
        raise ToolkitError(f"Task [{task.id}] {problem}", ExitStatus.USAGE)
    if args.dry_run is not None:
        show_request("POST", f"{access.endpoint}/jobs/{job.id}/tasks/{task.id}/reactivate")
        print("Dry run: nothing was reactivated.")
        return 0
    print(f"Reactivating task [{task.id}] of job [{job.id}]...")
    client.reactivate_task(job.id, task.id)
    print(f"Task [{task.id}] is waiting to run again; its new outputs replace the old ones when it completes.")
    print(f"Follow it with: python3 check_task.py --job_id {job.id} --wait")
    return 0


def retry_problem(job_state: str, task: models.BatchTask) -> str | None:
    """Why the service would refuse to reactivate this task (it runs only a completed task that failed, in a job
    that still takes tasks), or None."""
    state = wire_value(task.state)
    if job_state != "active":
        return (f"is in job state {job_state}, which runs no task again: create another job with "
                "create_pool_job.py and send the task there.")
    if state != "completed":
        return f"is {state}, not failed: nothing to retry (python3 check_task.py shows how it goes)."
    info = task.execution_info
    if info is not None and wire_value(info.result) == "success":
        return ("succeeded: there is nothing to retry. To run it again, send a new task with another --task_id.")
    return None


def send_task(args: argparse.Namespace, configured: Settings) -> int:
    check_id("--job_id", args.job_id)
    if args.retry is not None:
        return retry_task(args, configured)
    if args.task_id is None:
        raise ToolkitError("--task_id is required (the id of the new task), unless --retry TASK_ID.", ExitStatus.USAGE)
    check_id("--task_id", args.task_id)
    settings = load_settings(configured, task_settings)
    nodes = settings.nb_nodes if args.nodes is None else args.nodes
    if nodes < 1:
        raise ToolkitError(f"--nodes is {nodes}; an MPI task needs 1 node or more.", ExitStatus.USAGE)
    settings = with_knobs(settings, args.program, args.args, sweep=bool(args.sweep))
    if args.sweep:
        return send_sweep(args, settings, nodes)
    start_command(settings, args.processes)   # its checks, before any request
    check_sas_for_upload(settings)

    client = make_batch_client(settings.batch)
    target = check_job_and_pool(client, args.job_id, nodes, configured.vm_size if args.dry_run is not None else None)
    job_id, pool_id = target.job_id, target.pool_id
    check_container_exists(settings.storage)
    describe_fabric(target, settings, args.processes)
    if settings.start_command_is_default:
        warn_idle_nodes(target, nodes, settings.processes_for(target.fabric, args.processes))
    submission_id = uuid.uuid4().hex
    task = build_task(settings, job_id, args.task_id, nodes, submission_id,
                      start_command(settings, args.processes, target.fabric))
    if args.dry_run is not None:
        # With DIR the body goes to its file only: stdout keeps the summary, az takes the file.
        show_request("POST", f"{settings.batch.endpoint}/jobs/{job_id}/tasks", None if args.dry_run else task)
        if args.dry_run:
            print(f"Dry run: MPI task [{args.task_id}] would be added to job [{job_id}] on {nodes} node(s).")
            write_body(args.dry_run, f"task-{args.task_id}.json", task, secret=True)
        print("Dry run: nothing was added.")
        return 0
    print(f"Adding MPI task [{args.task_id}] to job [{job_id}] on {nodes} node(s) of pool [{pool_id}]...")
    add_task(client, job_id, task, submission_id)
    results = " and result files (OUTPUT_FILES)" if settings.output_files else ""
    print(f"Task [{args.task_id}] added. When it completes, its stdout.txt and stderr.txt{results} go to "
          f"{settings.storage.container_url}/{job_id}/{args.task_id}/")
    print(f"Follow it with: python3 check_task.py --job_id {job_id}")
    return 0


def send_sweep(args: argparse.Namespace, settings: TaskSettings, nodes: int) -> int:
    """--sweep FILE: the sweep's tasks (toolkit/sweep.py) that the job lacks, added in task collections."""
    sweep = read_sweep(args.sweep, args.task_id)
    check_id("--task_id", sweep.tasks[-1].task_id)   # the longest id of the sweep
    if not settings.start_command_is_default:
        raise ToolkitError("--sweep puts each line into PROGRAM_ARGS of the default START_COMMAND, but "
                           "START_COMMAND is set: unset it and use PROGRAM.", ExitStatus.USAGE)
    start_command(settings, args.processes)   # the same checks as for one task
    check_sas_for_upload(settings)
    client = make_batch_client(settings.batch)
    target = check_job_and_pool(client, args.job_id, nodes)
    job_id, pool_id = target.job_id, target.pool_id
    processes = settings.processes_for(target.fabric, args.processes)
    check_container_exists(settings.storage)
    describe_fabric(target, settings, args.processes)
    warn_idle_nodes(target, nodes, processes)
    clashes, missing = clashes_and_missing(client.list_tasks(job_id, select=["id", "environmentSettings"]), sweep)
    if clashes:
        raise ToolkitError(f"Task [{clashes[0]}] already exists in job [{job_id}] and is not part of this sweep "
                           f"({len(clashes)} such id(s)): choose another --task_id. Nothing was added.",
                           ExitStatus.USAGE)
    tasks = [sweep_task(settings, job_id, task, nodes, sweep.mark, processes, target.fabric) for task in missing]
    have = len(sweep.tasks) - len(missing)
    if args.dry_run is not None:
        if tasks:
            show_request("POST", f"{settings.batch.endpoint}/jobs/{job_id}/addtaskcollection",
                         models_task_group(batches(tasks)[0]))
        for number, batch in enumerate(batches(tasks), 1) if args.dry_run else ():
            write_body(args.dry_run, f"tasks-{number}.json", models_task_group(batch), secret=True)
        print(f"Dry run: {len(tasks)} task(s) of the sweep would be added in {len(batches(tasks))} request(s) "
              f"({have} already in the job); nothing was added.")
        return 0
    print(f"Adding {len(tasks)} MPI task(s) of sweep {args.sweep} to job [{job_id}] on {nodes} node(s) each, "
          f"pool [{pool_id}] ({have} already there)...")
    add_sweep_tasks(client, job_id, tasks, sweep)
    first, last = sweep.tasks[0].task_id, sweep.tasks[-1].task_id
    print(f"Sweep tasks [{first}] .. [{last}] in job [{job_id}]. Each task's stdout.txt and stderr.txt go to "
          f"{settings.storage.container_url}/{job_id}/TASK_ID/ when it completes.")
    print(f"Follow them with: python3 check_task.py --job_id {job_id}")
    return 0


def sweep_task(settings: TaskSettings, job_id: str, task: SweepTask, nodes: int, mark: str,
               processes: int | None, fabric: Fabric = Fabric.TCP) -> models.BatchTaskCreateOptions:
    """One task of a sweep: the default START_COMMAND with the task's line as PROGRAM_ARGS."""
    own = replace(settings, program_args=task.program_args)
    return build_task(own, job_id, task.task_id, nodes, mark, own.start_command_for(processes, fabric))


def models_task_group(tasks: list[models.BatchTaskCreateOptions]) -> models.BatchTaskGroup:
    from azure.batch import models

    return models.BatchTaskGroup(task_values=tasks)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run(lambda settings: send_task(args, settings))


if __name__ == "__main__":
    sys.exit(main())
