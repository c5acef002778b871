"""create_pool_job.py against an account whose image list holds a retired image and one near its end of support.

The emulator serves that list through --supported-images; the scripts run as subprocesses against it.
"""

import datetime
import json
import subprocess
import sys

import pytest

from tests.e2e.emulator_process import REPO_ROOT, start_emulator


def image(offer, sku, agent, end_of_life):
    return {"imageReference": {"publisher": "canonical", "offer": offer, "sku": sku, "version": "latest"},
            "nodeAgentSKUId": agent, "osType": "linux", "verificationType": "verified",
            "capabilities": [], "batchSupportEndOfLife": end_of_life}


SOON = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=30)
IMAGES = [
    image("0001-com-ubuntu-server-focal", "20_04-lts", "batch.node.ubuntu 20.04", "2025-04-23T00:00:00Z"),
    image("0001-com-ubuntu-server-jammy", "22_04-lts", "batch.node.ubuntu 22.04", f"{SOON:%Y-%m-%dT00:00:00Z}"),
]


@pytest.fixture(scope="module")
def emulator_url(tmp_path_factory):
    root = tmp_path_factory.mktemp("images-root")
    images = root.parent / "images.json"
    images.write_text(json.dumps(IMAGES))
    with open(root.parent / "images-emulator.log", "w") as log:
        proc, url = start_emulator(root, log, "--supported-images", str(images))
        try:
            yield url
        finally:
            proc.terminate()
            proc.wait(timeout=15)


def create(run_script, ids, emulator_url, offer, sku, agent):
    return run_script("create_pool_job.py", "--pool_id", ids.pool_id, "--job_id", ids.job_id,
                      env={"AZURE_BATCH_ENDPOINT": emulator_url, "IMAGE_OFFER": offer, "IMAGE_SKU": sku,
                           "NODE_AGENT_SKU_ID": agent})


def test_an_image_past_its_end_of_support_is_refused(run_script, ids, emulator_url):
    result = create(run_script, ids, emulator_url, "0001-com-ubuntu-server-focal", "20_04-lts",
                    "batch.node.ubuntu 20.04")
    assert result.returncode == 2
    assert "reached its end of support on Batch on 2025-04-23" in result.stderr
    assert result.stderr.count("\n") == 1 and "Creating pool" not in result.stdout


def test_an_image_near_its_end_of_support_is_used_with_a_warning(run_script, ids, emulator_url):
    result = create(run_script, ids, emulator_url, "0001-com-ubuntu-server-jammy", "22_04-lts",
                    "batch.node.ubuntu 22.04")
    assert result.returncode == 0, result.stderr
    assert f"Warning: image canonical/0001-com-ubuntu-server-jammy/22_04-lts leaves Batch support on {SOON:%Y-%m-%d}" \
        in result.stdout
    assert f"Pool [{ids.pool_id}] created" in result.stdout


def test_emulator_refuses_an_unreadable_image_list(tmp_path):
    (tmp_path / "images.json").write_text('{"not": "a list"}')
    result = subprocess.run([sys.executable, "-m", "batch_emulator", "--supported-images",
                             str(tmp_path / "images.json")], cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 2 and "must hold a JSON list of images" in result.stderr
