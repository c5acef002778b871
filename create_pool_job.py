"""Create a pool of compute nodes and a job (future tasks sent to the job run on the pool).

    python3 create_pool_job.py --pool_id POOL_ID --job_id JOB_ID [--vm_size SIZE] [--max_nodes N]
                               [--spot] [--check_formula] [--dry_run [DIR]]

1. Logs in to the Batch account from config_resources.py.
2. Creates the pool (Ubuntu 24.04 LTS): inter-node communication on, one task
   slot per node, and an autoscale formula that grows the pool with pending
   tasks (every MPI instance counts) up to --max_nodes and shrinks it to zero
   when idle. Before the formula is enabled, the service evaluates it on the
   new pool and the script shows the result; a formula that fails to evaluate
   is refused with the service's message and never enabled (the pool stays
   at 0 nodes). An existing pool that can run MPI tasks is reused.
   With --spot (or SPOT=true) the formula asks for Spot (low-priority)
   nodes instead of dedicated ones, the same number.
3. Creates the job, whose preparation task clones REPOSITORY_URL and runs
   demo_azure_batch/install.sh on each node before its first task there.
   An existing job on the same pool with the same preparation task is reused.

REPOSITORY_URL is checked before any request, with the default CMD_PREP_TASK
(toolkit/repository.py): a repository the nodes could not clone or use is
refused; uncommitted changes, or a URL that does not answer in time, a warning.
A local folder (git or not) is packed instead, uploaded once to the blob
container under its content hash (programs/SHA256.tar.gz, reused when there),
and unpacked by the preparation task where the clone would be
(toolkit/package.py): no node sees a path of this machine.

The job is checked before anything is created: a job id that exists on another
pool, or whose preparation task (repository, CMD_PREP_TASK) differs from this
run's, is refused with what differs and what to do; no pool is left behind.

--dry_run makes the same reads and checks (GET requests only) and prints the
requests it would send, with their JSON bodies (SAS signatures redacted);
it creates and changes nothing. --dry_run DIR prints the requests without their
bodies and writes DIR/pool-POOL_ID.json (its formula enabled from the start) and
DIR/job-JOB_ID.json, which `az ... --json-file` sends as they are; a packed folder
is then uploaded (the one write), for the job file's link.

--check_formula also shows what the autoscale formula of an existing pool
evaluates to now (the service's evaluate API: nothing is applied).

Exit codes: 0 done, 1 the service refused (a formula that fails to evaluate
included), 2 bad option or configuration, 130 interrupted.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import sys
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

from toolkit.autoscale import HOLD_FORMULA, apply_formula, autoscale_formula, check_formula, evaluation_interval
from toolkit.batch import (
    MAX_NODES_METADATA,
    RETRY_POST,
    SUBMISSION_MARK,
    error_code,
    made_by,
    make_batch_client,
    mpi_problem,
    pool_max_nodes,
    wire_value,
)
from toolkit.checked import PoolSettings, pool_settings, storage
from toolkit.cli import check_id, check_vm_size, make_parser, run
from toolkit.commands import is_url, unpack_cmd_prep_task
from toolkit.dryrun import add_dry_run_option, autoscaled_at_creation, show_request, write_body
from toolkit.errors import ExitStatus, ToolkitError
from toolkit.jobs import (
    JOB_FIELDS,
    check_existing_job,
    clones_repository,
    delete_pool_command,
    get_or_none,
    preparation_metadata,
    shown_url,
    unpacks_folder,
)
from toolkit.package import ProgramPackage, describe_package, pack_program, program_resource_file, share_program
from toolkit.repository import check_repository, local_program
from toolkit.settings import Settings, load_settings
from toolkit.variables import INTER_NODE_POOL_CAP
from toolkit.vmsizes import HPC_IMAGE, HPC_NODE_AGENT_SKU_ID, is_infiniband_size, retirement_of

if TYPE_CHECKING:
    from azure.batch import BatchClient, models


# Warn when the image's end of support on Batch is this close.
EOL_WARNING = datetime.timedelta(days=90)
POOL_FIELDS = ["id", "state", "vmSize", "enableInterNodeCommunication", "taskSlotsPerNode", "enableAutoScale",
               "autoScaleFormula", "targetDedicatedNodes", "targetLowPriorityNodes", "metadata"]


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser("create_pool_job.py", "Create (or reuse) an autoscaled MPI pool and a job on it.")
    parser.add_argument("--pool_id", required=True, help="id of the pool to create or reuse")
    parser.add_argument("--job_id", required=True, help="id of the job to create or reuse")
    parser.add_argument("--vm_size", help="VM size of the nodes (default: VM_SIZE, standard_d2s_v5)")
    parser.add_argument("--max_nodes", type=int, help="most nodes autoscale may start (default: MAX_NODES, 5)")
    parser.add_argument("--spot", action="store_true",
                        help="a new pool's nodes are Spot (low-priority) ones: cheaper, but the service may take "
                             "them back (default: SPOT, false)")
    parser.add_argument("--check_formula", action="store_true",
                        help="also show what the autoscale formula of an existing pool evaluates to now "
                             "(a new pool's formula is always checked before it is enabled)")
    add_dry_run_option(parser, "create nothing")
    return parser


def build_pool(settings: PoolSettings, pool_id: str, vm_size: str, max_nodes: int,
               submission_id: str = "") -> models.BatchPoolCreateOptions:
    from azure.batch import models

    image = settings.image_reference
    return models.BatchPoolCreateOptions(
        id=pool_id,
        vm_size=vm_size,
        virtual_machine_configuration=models.VirtualMachineConfiguration(
            image_reference=models.BatchVmImageReference(
                publisher=image["publisher"], offer=image["offer"], sku=image["sku"], version=image["version"]),
            node_agent_sku_id=settings.node_agent_sku_id),
        enable_inter_node_communication=True,
        task_slots_per_node=1,  # multi-instance tasks are never scheduled otherwise
        enable_auto_scale=True,
        auto_scale_formula=HOLD_FORMULA,  # the real formula is enabled once it evaluates (apply_formula)
        auto_scale_evaluation_interval=evaluation_interval(settings),
        metadata=[models.BatchMetadataItem(name=MAX_NODES_METADATA, value=str(max_nodes)),
                  models.BatchMetadataItem(name=SUBMISSION_MARK, value=submission_id)],
    )


def build_job(settings: PoolSettings, job_id: str, pool_id: str, submission_id: str = "",
              program_url: str = "") -> models.BatchJobCreateOptions:
    """The job; with `program_url` (a packed local folder's archive, with a read SAS) its preparation task
    downloads that archive as a resource file and unpacks it (toolkit/package.py)."""
    from azure.batch import models

    admin = models.UserIdentity(auto_user=models.AutoUserSpecification(
        scope=models.AutoUserScope.POOL, elevation_level=models.ElevationLevel.ADMIN))  # install.sh installs packages
    return models.BatchJobCreateOptions(
        id=job_id,
        pool_info=models.BatchPoolInfo(pool_id=pool_id),
        job_preparation_task=models.BatchJobPreparationTask(
            command_line=settings.cmd_prep_task,
            resource_files=[program_resource_file(settings.program_sha256, program_url)] if program_url else None,
            wait_for_success=True,
            rerun_on_node_reboot_after_success=True,
            user_identity=admin),
        metadata=[models.BatchMetadataItem(name=SUBMISSION_MARK, value=submission_id),
                  *(models.BatchMetadataItem(name=name, value=value)
                    for name, value in preparation_metadata(settings).items())],
    )


def check_image(client: BatchClient, settings: PoolSettings) -> None:
    """Refuse an image and node agent pair the account does not support, or whose support has ended."""
    wanted = {key: settings.image_reference[key].lower() for key in ("publisher", "offer", "sku")}
    agent = settings.node_agent_sku_id.lower()
    for image in client.list_supported_images(filter="osType eq 'linux'"):
        reference = image.image_reference
        found = {"publisher": (reference.publisher or "").lower(), "offer": (reference.offer or "").lower(),
                 "sku": (reference.sku or "").lower()}
        if found == wanted and image.node_agent_sku_id.lower() == agent:
            break
    else:
        raise ToolkitError(
            f"Image {'/'.join(wanted.values())} with node agent '{settings.node_agent_sku_id}' is not supported by "
            "this Batch account. Set IMAGE_PUBLISHER, IMAGE_OFFER, IMAGE_SKU and NODE_AGENT_SKU_ID to a supported "
            "pair (az batch pool supported-images list).", ExitStatus.USAGE)
    end_of_life = image.batch_support_end_of_life
    if isinstance(end_of_life, datetime.datetime):
        now = datetime.datetime.now(datetime.timezone.utc)
        if end_of_life <= now:
            raise ToolkitError(f"Image {'/'.join(wanted.values())} reached its end of support on Batch on "
                               f"{end_of_life:%Y-%m-%d}. Choose a current image (default: Ubuntu 24.04 LTS).",
                               ExitStatus.USAGE)
        if end_of_life - now < EOL_WARNING:
            print(f"Warning: image {'/'.join(wanted.values())} leaves Batch support on {end_of_life:%Y-%m-%d}.")


def settings_problem(pool: models.BatchPool, vm_size: str, max_nodes: int, spot: bool = False) -> str | None:
    """Why an existing pool does not match the node size, cap and kind (Spot or dedicated) asked for (this
    script does not change an existing pool), or None. Its kind is known from its formula when it is
    this toolkit's formula of the other kind."""
    if pool.enable_auto_scale and pool.auto_scale_formula == autoscale_formula(max_nodes, not spot):
        has, asked = ("dedicated", "Spot") if spot else ("Spot", "dedicated")
        return f"has {has} nodes, not the {asked} nodes asked for (--spot or SPOT)"
    recorded = pool_max_nodes(pool)
    if recorded is not None and pool.enable_auto_scale and recorded != max_nodes:
        return f"has at most {recorded} nodes, not the {max_nodes} asked for (--max_nodes or MAX_NODES)"
    if pool.vm_size and pool.vm_size.lower() != vm_size.lower():
        return f"has {pool.vm_size} nodes, not the {vm_size} asked for (--vm_size or VM_SIZE)"
    return None


def show_pool_requests(settings: PoolSettings, pool_id: str, vm_size: str, max_nodes: int,
                       submission_id: str, bodies: str = "") -> None:
    """--dry_run: the pool's create, then the formula's evaluate and enable, as they would be sent. With
    `bodies` (DIR) their URLs only, and the one body az needs for the same pool in DIR/pool-POOL_ID.json."""
    from azure.batch import models

    endpoint = settings.batch.endpoint
    pool = build_pool(settings, pool_id, vm_size, max_nodes, submission_id)
    formula = autoscale_formula(max_nodes, settings.spot)
    if bodies:
        for path in ("pools", f"pools/{pool_id}/evaluateautoscale", f"pools/{pool_id}/enableautoscale"):
            show_request("POST", f"{endpoint}/{path}")
        print(f"Dry run: pool [{pool_id}] would be created ({vm_size}, autoscale from 0 to {max_nodes} nodes); for az, "
              "the same pool in one body, its formula enabled from the start:")
        write_body(bodies, f"pool-{pool_id}.json", autoscaled_at_creation(pool, formula))
        return
    show_request("POST", f"{endpoint}/pools", pool)
    show_request("POST", f"{endpoint}/pools/{pool_id}/evaluateautoscale",
                 models.BatchPoolEvaluateAutoScaleOptions(auto_scale_formula=formula))
    show_request("POST", f"{endpoint}/pools/{pool_id}/enableautoscale", models.BatchPoolEnableAutoScaleOptions(
        auto_scale_formula=formula, auto_scale_evaluation_interval=evaluation_interval(settings)))


def ensure_pool(client: BatchClient, settings: PoolSettings, pool_id: str, vm_size: str, max_nodes: int,
                submission_id: str, check_existing: bool = False, dry_run: bool = False, bodies: str = "") -> None:
    pool = get_or_none(client.get_pool, pool_id, POOL_FIELDS)
    if pool is None:
        pool = create_pool(client, settings, pool_id, vm_size, max_nodes, submission_id, dry_run, bodies)
        if pool is None:  # this run made it (or the dry run showed how it would)
            return
    reuse_pool(client, settings, pool, pool_id, vm_size, max_nodes, check_existing, dry_run)


def create_pool(client: BatchClient, settings: PoolSettings, pool_id: str, vm_size: str, max_nodes: int,
                submission_id: str, dry_run: bool, bodies: str = "") -> models.BatchPool | None:
    """Create the pool and enable its formula; returns None, or the pool another run made under the same id
    meanwhile (then checked for reuse like any existing pool)."""
    from azure.core.exceptions import ResourceExistsError

    check_image(client, settings)
    if dry_run:
        show_pool_requests(settings, pool_id, vm_size, max_nodes, submission_id, bodies)
        return None
    print(f"Creating pool [{pool_id}]...")
    try:
        client.create_pool(build_pool(settings, pool_id, vm_size, max_nodes, submission_id), **RETRY_POST)
    except ResourceExistsError as err:
        if error_code(err) != "PoolExists":
            raise
        pool = client.get_pool(pool_id, select=POOL_FIELDS)  # made by a concurrent run, or by our retried POST
        if not made_by(pool.metadata, submission_id):
            return pool
    try:
        apply_formula(client, settings, pool_id, max_nodes)
    except ToolkitError as err:
        raise ToolkitError(f"{err} Pool [{pool_id}] was created but stays at 0 nodes; delete it: "
                           f"{delete_pool_command(pool_id)}", err.exit_code) from None
    kind = "Spot (low-priority) " if settings.spot else ""
    print(f"Pool [{pool_id}] created: {vm_size} {kind}nodes, autoscale from 0 to {max_nodes} nodes.")
    return None


def reuse_pool(client: BatchClient, settings: PoolSettings, pool: models.BatchPool, pool_id: str, vm_size: str,
               max_nodes: int, check_existing: bool, dry_run: bool) -> None:
    """Refuse an existing pool that cannot run this job's MPI tasks as asked; else reuse it, enabling the
    formula a run interrupted before it could, or checking its formula with --check_formula."""
    if wire_value(pool.state) == "deleting":
        raise ToolkitError(f"Pool [{pool_id}] is being deleted; wait until it is gone or use another --pool_id.")
    problem = mpi_problem(pool)
    problem = f"cannot run MPI tasks: {problem}" if problem else \
        settings_problem(pool, vm_size, max_nodes, settings.spot)
    if problem:
        raise ToolkitError(f"Pool [{pool_id}] already exists but {problem}. "
                           f"Use another --pool_id, or delete it: {delete_pool_command(pool_id)}")
    if dry_run:
        print(f"Dry run: pool [{pool_id}] already exists and can run MPI tasks; it would be reused (no pool body).")
        return
    if pool.enable_auto_scale and pool.auto_scale_formula == HOLD_FORMULA:
        print(f"Pool [{pool_id}] exists at 0 nodes: a run was interrupted before it enabled the autoscale formula.")
        apply_formula(client, settings, pool_id, max_nodes)
    elif check_existing:
        if not pool.enable_auto_scale:
            raise ToolkitError(f"Pool [{pool_id}] has a fixed size (autoscale is off): it has no formula to check.")
        check_formula(client, pool_id, pool.auto_scale_formula or "")
    print(f"Pool [{pool_id}] already exists and can run MPI tasks; reusing it.")


def check_cloned_repository(settings: PoolSettings,
                            configured: Settings) -> tuple[PoolSettings, ProgramPackage | None]:
    """Refuse (exit 2) a REPOSITORY_URL the default preparation could not clone, unpack or run, print the
    warnings. A local folder is packed here (toolkit/package.py): the settings returned then unpack its
    archive instead of cloning the path, which no node could see. Nothing is said with a custom
    CMD_PREP_TASK: what it clones is the user's (the job line names it)."""
    if not clones_repository(settings):
        return settings, None
    if is_url(settings.repository):
        for warning in check_repository(settings.repository):
            print(f"Warning: {warning}")  # on stdout with the run's other lines, like check_image's
        return settings, None
    program = local_program(settings.repository)
    for warning in program.warnings:
        print(f"Warning: {warning}")
    package = pack_program(program, storage(configured))  # BLOB_CONTAINER_URL: where the archive goes
    print(describe_package(package))
    return dataclasses.replace(settings, cmd_prep_task=unpack_cmd_prep_task(package.content_sha256),
                               program_sha256=package.content_sha256), package


def describe_preparation(settings: PoolSettings) -> str:
    """What the job preparation task does, without credentials a repository URL may hold."""
    if not clones_repository(settings):
        return "its preparation task runs CMD_PREP_TASK on each node."
    if unpacks_folder(settings):
        return f"its preparation task unpacks the program packed from {settings.repository} and runs " \
               "demo_azure_batch/install.sh on each node."
    return f"its preparation task clones {shown_url(settings.repository)} and runs demo_azure_batch/install.sh " \
           "on each node."


def ensure_job(client: BatchClient, settings: PoolSettings, job_id: str, pool_id: str, submission_id: str,
               existing: models.BatchJob | None, dry_run: bool = False, program_url: str = "",
               bodies: str = "") -> None:
    from azure.core.exceptions import ResourceExistsError

    if existing is not None:
        print(f"Job [{job_id}] already exists on pool [{pool_id}]; reusing it.")
        return
    if dry_run:
        body = build_job(settings, job_id, pool_id, submission_id, program_url)
        show_request("POST", f"{settings.batch.endpoint}/jobs", None if bodies else body)
        if bodies:
            print(f"Dry run: job [{job_id}] would be created on pool [{pool_id}]; {describe_preparation(settings)}")
            write_job_body(bodies, settings, body, program_url)
        return
    print(f"Creating job [{job_id}]...")
    try:
        client.create_job(build_job(settings, job_id, pool_id, submission_id, program_url), **RETRY_POST)
    except ResourceExistsError as err:
        if error_code(err) not in ("JobExists", "JobWithSameIdExists"):
            raise
        job = client.get_job(job_id, select=JOB_FIELDS)  # made by a concurrent run, or by our retried POST
        if not made_by(job.metadata, submission_id):
            check_existing_job(client, settings, job_id, pool_id)
            print(f"Job [{job_id}] was just created by another run with the same settings; reusing it.")
            return
    print(f"Job [{job_id}] created on pool [{pool_id}]; {describe_preparation(settings)}")


def write_job_body(bodies: str, settings: PoolSettings, job: models.BatchJobCreateOptions, program_url: str) -> None:
    """DIR/job-JOB_ID.json, whole; its line names the secret it holds: the program's read link (a SAS), or
    the credentials REPOSITORY_URL holds, which the preparation command line clones with."""
    holds = "the SAS of the program's download" if "sig=" in program_url else \
        "the credentials in REPOSITORY_URL" if shown_url(settings.repository) != settings.repository else ""
    write_body(bodies, f"job-{job.id}.json", job, secret=bool(holds), holds=holds)


def image_for_size(settings: PoolSettings, vm_size: str, image_is_default: bool) -> PoolSettings:
    """The pool's image: on an InfiniBand size the HPC image (its drivers, HPC-X), unless IMAGE_* or
    NODE_AGENT_SKU_ID are set; a warning for a size whose retirement Azure has announced."""
    retirement = retirement_of(vm_size)
    if retirement is not None:
        today = datetime.datetime.now(datetime.timezone.utc).date()
        when = "retired on" if retirement.date <= today else "retire on"
        print(f"Warning: {retirement.what} sizes ({vm_size}) {when} {retirement.date:%Y-%m-%d} (Azure's "
              "announcement): pick a current size with --vm_size or VM_SIZE.", file=sys.stderr)
    if not is_infiniband_size(vm_size):
        return settings
    hpc = "/".join(HPC_IMAGE[key] for key in ("publisher", "offer", "sku"))
    if not image_is_default:
        image = "/".join(settings.image_reference[key] for key in ("publisher", "offer", "sku"))
        if image.lower() != hpc:
            print(f"Note: {vm_size} is an InfiniBand size; the image set by IMAGE_* ({image}) is kept, but only the "
                  f"HPC image {hpc} has its InfiniBand drivers and HPC-X (unset IMAGE_* and NODE_AGENT_SKU_ID).")
        return settings
    print(f"Image: {hpc} with node agent {HPC_NODE_AGENT_SKU_ID} (InfiniBand size {vm_size}).")
    return dataclasses.replace(settings, image_reference=dict(HPC_IMAGE), node_agent_sku_id=HPC_NODE_AGENT_SKU_ID)


def create_pool_and_job(args: argparse.Namespace, configured: Settings) -> int:
    check_id("--pool_id", args.pool_id)
    check_id("--job_id", args.job_id)
    if args.vm_size is not None:
        check_vm_size("--vm_size", args.vm_size)
    settings = load_settings(configured, pool_settings)
    if args.spot:  # --spot: as SPOT=true, for this run
        settings = dataclasses.replace(settings, spot=True)
    max_nodes = settings.max_nodes if args.max_nodes is None else args.max_nodes
    if not 1 <= max_nodes <= INTER_NODE_POOL_CAP:
        raise ToolkitError(f"--max_nodes is {max_nodes}; give 1 to {INTER_NODE_POOL_CAP} "
                           "(pools with inter-node communication are capped).", ExitStatus.USAGE)
    vm_size = settings.vm_size if args.vm_size is None else args.vm_size
    settings = image_for_size(settings, vm_size, configured.image_is_default)
    # Before any request: a bad one would fail on every node, minutes later.
    settings, package = check_cloned_repository(settings, configured)

    client = make_batch_client(settings.batch)
    submission_id = uuid.uuid4().hex  # marks what this run creates (see toolkit.batch.SUBMISSION_MARK)
    existing_job = check_existing_job(client, settings, args.job_id, args.pool_id)  # before creating anything
    dry_run, bodies = args.dry_run is not None, args.dry_run or ""   # --dry_run alone gives ""
    uploads = bool(package and existing_job is None and (bodies or not dry_run))  # DIR: the job file's link works
    program_url = share_program(package, dry_run and not uploads) if package and existing_job is None else ""
    ensure_pool(client, settings, args.pool_id, vm_size, max_nodes, submission_id, check_existing=args.check_formula,
                dry_run=dry_run, bodies=bodies)
    ensure_job(client, settings, args.job_id, args.pool_id, submission_id, existing_job, dry_run=dry_run,
               program_url=program_url, bodies=bodies)
    if dry_run:
        print("Dry run: nothing was created or changed" + (" in the Batch account; the program's archive is in the "
                                                           "container, for the job file's link." if uploads else "."))
        return 0
    print(f"Next: python3 send_task.py --job_id {args.job_id} --task_id TASK_ID")
    print("The pool shrinks to 0 nodes when idle. Delete the job and the pool when you are done: "
          f"python3 delete_pool_job.py --pool_id {args.pool_id} --job_id {args.job_id} --yes")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run(lambda settings: create_pool_and_job(args, settings))


if __name__ == "__main__":
    sys.exit(main())
