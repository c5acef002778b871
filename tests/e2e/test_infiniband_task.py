"""An MPI task on a pool of an InfiniBand size, end to end against the local stack: send_task.py gives it the
InfiniBand line (HPC-X, one process per core unless NB_PROCESSES or --processes says otherwise), and on a node
without HPC-X (the emulator's nodes have none, as a pool of another image on such a size would not) the task
ends at once with the line that says which image it needs, which check_task.py shows."""

import pytest

from tests.e2e.conftest import batch_client

pytestmark = pytest.mark.e2e

HB_SIZE = "Standard_HB120rs_v3"
# The user's own image, set: the pool keeps it (no HPC-X there), which is what the failing run below shows.
CANONICAL = {"IMAGE_PUBLISHER": "canonical", "IMAGE_OFFER": "ubuntu-24_04-lts", "IMAGE_SKU": "server",
             "NODE_AGENT_SKU_ID": "batch.node.ubuntu 24.04"}
NO_HPCX = ("HPC-X (module mpi/hpcx) not found on this node: an InfiniBand size needs the HPC image "
           "microsoft-dsvm/ubuntu-hpc/2404 (unset IMAGE_* and NODE_AGENT_SKU_ID and make a new pool)")


@pytest.fixture
def hb_pool(run_script, ids):
    created = run_script("create_pool_job.py", "--pool_id", ids.pool_id, "--job_id", ids.job_id,
                         "--vm_size", HB_SIZE, "--max_nodes", "2", env=CANONICAL)
    assert created.returncode == 0, created.stdout + created.stderr
    return ids


def dry_run(run_script, ids, *options, env=None):
    sent = run_script("send_task.py", "--job_id", ids.job_id, "--task_id", ids.task_id, "--dry_run", *options,
                      env={**CANONICAL, **(env or {})})
    assert sent.returncode == 0, sent.stdout + sent.stderr
    return sent.stdout


def test_the_task_gets_the_infiniband_line_with_one_process_per_core(run_script, hb_pool):
    shown = dry_run(run_script, hb_pool)
    assert (f"Pool [{hb_pool.pool_id}] has InfiniBand nodes: mpirun loads HPC-X and runs over the fabric with one "
            "process per core of the task's nodes (NB_PROCESSES is unset).") in shown
    assert 'exec mpirun -np $slots --host \\"$hosts\\" --map-by $map --bind-to $bind -x UCX_TLS=rc' in shown
    assert "module load mpi/hpcx" in shown and "OMPI_MCA_btl_tcp_if_include" not in shown


def test_nb_processes_and_processes_still_set_the_count(run_script, hb_pool):
    assert "exec mpirun -np 8 --host" in dry_run(run_script, hb_pool, env={"NB_PROCESSES": "8"})
    with_option = dry_run(run_script, hb_pool, "--processes", "16", env={"NB_PROCESSES": "8"})
    assert "exec mpirun -np 16 --host" in with_option and "with 16 process(es)." in with_option


def test_without_hpcx_the_task_fails_at_once_saying_which_image(run_script, hb_pool, local_stack):
    sent = run_script("send_task.py", "--job_id", hb_pool.job_id, "--task_id", hb_pool.task_id, "--nodes", "1",
                      env=CANONICAL)
    assert sent.returncode == 0, sent.stdout + sent.stderr
    waited = run_script("check_task.py", "--job_id", hb_pool.job_id, "--wait", "--poll_seconds", "0.5", env=CANONICAL)
    assert waited.returncode == 3, waited.stdout + waited.stderr
    task = batch_client(local_stack).get_task(hb_pool.job_id, hb_pool.task_id)
    assert task.execution_info.exit_code == 3
    assert NO_HPCX in waited.stdout


def test_an_infiniband_size_gets_the_hpc_image_unless_one_is_set(run_script, ids, local_stack):
    created = run_script("create_pool_job.py", "--pool_id", ids.pool_id, "--job_id", ids.job_id,
                         "--vm_size", HB_SIZE, "--max_nodes", "1")
    assert created.returncode == 0, created.stdout + created.stderr
    assert ("Image: microsoft-dsvm/ubuntu-hpc/2404 with node agent batch.node.ubuntu 24.04 (InfiniBand size "
            f"{HB_SIZE}).") in created.stdout
    pool = batch_client(local_stack).get_pool(ids.pool_id)
    image = pool.virtual_machine_configuration.image_reference
    assert (image.publisher, image.offer, image.sku) == ("microsoft-dsvm", "ubuntu-hpc", "2404")
    assert pool.virtual_machine_configuration.node_agent_sku_id == "batch.node.ubuntu 24.04"
    assert pool.enable_inter_node_communication and pool.task_slots_per_node == 1


def test_the_users_image_is_kept_with_a_note_and_a_retiring_size_is_warned_about(run_script, ids, hb_pool, tmp_path):
    kept = run_script("create_pool_job.py", "--pool_id", f"{ids.pool_id}-2", "--job_id", f"{ids.job_id}-2",
                      "--vm_size", "Standard_HB120rs_v2", "--dry_run", env=CANONICAL)
    assert kept.returncode == 0, kept.stdout + kept.stderr
    assert ("Note: Standard_HB120rs_v2 is an InfiniBand size; the image set by IMAGE_* "
            "(canonical/ubuntu-24_04-lts/server) is kept") in kept.stdout
    assert ("Warning: HBv2 sizes (Standard_HB120rs_v2) retire on 2027-05-31 (Azure's announcement): pick a current "
            "size with --vm_size or VM_SIZE.") in kept.stderr
    assert '"publisher": "canonical"' in kept.stdout
    hpc = run_script("create_pool_job.py", "--pool_id", f"{ids.pool_id}-3", "--job_id", f"{ids.job_id}-3",
                     "--vm_size", HB_SIZE, "--dry_run")
    assert hpc.returncode == 0, hpc.stdout + hpc.stderr
    for wire in ('"publisher": "microsoft-dsvm"', '"offer": "ubuntu-hpc"', '"sku": "2404"',
                 '"nodeAgentSKUId": "batch.node.ubuntu 24.04"', '"enableInterNodeCommunication": true',
                 '"taskSlotsPerNode": 1', f'"vmSize": "{HB_SIZE}"'):
        assert wire in hpc.stdout, (wire, hpc.stdout)
