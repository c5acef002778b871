"""The checks the real service makes on what a pool or job names, against `python -m batch_emulator`: subnet and
custom image ids, application packages, a job that takes a job schedule's id, and job replace. Each refusal
asserts the status, the code and that nothing was made.

Sources (abbreviations below):
  PY-pools   Azure/azure-sdk-assets, python/sdk/batch/azure-batch/tests/recordings/
             test_batch.pyTestBatchtest_batch_create_pools[sync].json (entries 3-4: the refused subnet and image)
  PY-jobs    the same folder, test_batch.pyTestBatchtest_batch_jobs[sync].json (entries 0-3: PUT on an auto pool job)
  JS-task    Azure/azure-sdk-assets, js/sdk/batch/batch-rest/recordings/node/task_operations_test/
             recording_should_add_a_task_with_an_application_package_reference_successfully.json
  NET-apps   azure-sdk-for-net, Batch data-plane ApplicationPackageReferencesTests (BadAppPackageReferenceFails,
             BadAppPackageReferenceAndVersionFails): the 409's values
  CODES      the Batch error-code list ("Batch Status and Error Codes"): JobScheduleWithSameIdExists's message
"""

import pytest
from azure.batch import models as m
from azure.core.exceptions import HttpResponseError, ResourceExistsError

from batch_emulator.service.resource_ids import ACCOUNT_SUBSCRIPTION_ID, IMAGE_ID_FORMATS
from tests.conftest import wait_for
from tests.e2e.recorded_client import IMAGE, add_job, add_pool, uid

pytestmark = pytest.mark.e2e

OTHER_SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
GROUP = f"/subscriptions/{ACCOUNT_SUBSCRIPTION_ID}/resourceGroups/test/providers"
SUBNET = f"{GROUP}/Microsoft.Network/virtualNetworks/vnet1/subnets/subnet1"
UNKNOWN_PACKAGE = "The specified application package does not exist."


def pool_body(pool_id, **extra):
    return {"id": pool_id, "vmSize": "standard_d2_v2", "virtualMachineConfiguration": IMAGE, **extra}


def values(answer):
    return {item["key"]: item["value"] for item in answer.json.get("values", [])}


def assert_refused(answer, status, code):
    assert answer.status == status, answer
    assert answer.json["code"] == code, answer


def assert_no_pool(raw, pool_id):
    answer = raw("GET", f"/pools/{pool_id}")
    assert answer.status == 404 and answer.json["code"] == "PoolNotFound", answer


def assert_no_job(raw, job_id):
    answer = raw("GET", f"/jobs/{job_id}")
    assert answer.status == 404 and answer.json["code"] == "JobNotFound", answer


# ---------------------------------------------------------------- networkConfiguration.subnetId

def test_a_subnet_in_another_subscription_is_the_recorded_400(raw):
    # PY-pools entry 3, with the emulator's account subscription in the Reason.
    pool_id, subnet = uid("net"), SUBNET.replace(ACCOUNT_SUBSCRIPTION_ID, OTHER_SUBSCRIPTION)
    answer = raw("POST", "/pools", pool_body(pool_id, networkConfiguration={"subnetId": subnet}))
    assert_refused(answer, 400, "InvalidPropertyValue")
    assert answer.json["message"]["value"].startswith(
        "The value provided for one of the properties in the request body is invalid.")
    assert values(answer) == {
        "PropertyName": "subnetId", "PropertyValue": subnet,
        "Reason": "The specified subnetId is in a different subscription and cannot be used with the current Batch "
                  f"account in subscription {ACCOUNT_SUBSCRIPTION_ID}"}
    assert_no_pool(raw, pool_id)


@pytest.mark.parametrize("subnet", [
    "subnet1",
    "/subscriptions/not-a-guid/resourceGroups/test/providers/Microsoft.Network/virtualNetworks/v/subnets/s",
    f"{GROUP}/Microsoft.Network/virtualNetworks/vnet1",                       # the network, not a subnet
    f"{GROUP}/Microsoft.ClassicNetwork/virtualNetworks/vnet1/subnets/s1",     # classic: cloud service pools only
    f"{SUBNET}/extra",
], ids=["bare-name", "not-a-guid", "network-only", "classic", "extra-segment"])
def test_a_malformed_subnet_id_is_400_invalid_property_value(raw, subnet):
    pool_id = uid("net")
    answer = raw("POST", "/pools", pool_body(pool_id, networkConfiguration={"subnetId": subnet}))
    assert_refused(answer, 400, "InvalidPropertyValue")
    assert values(answer)["PropertyName"] == "subnetId"
    assert values(answer)["PropertyValue"] == subnet
    assert_no_pool(raw, pool_id)


def test_a_subnet_of_the_account_subscription_is_accepted_in_any_case(raw):
    pool_id = uid("net")
    subnet = SUBNET.replace("Microsoft.Network", "microsoft.network").replace("resourceGroups", "resourcegroups")
    assert raw("POST", "/pools", pool_body(pool_id, networkConfiguration={"subnetId": subnet})).status == 201
    network = raw("GET", f"/pools/{pool_id}").json["networkConfiguration"]
    assert network["subnetId"] == subnet
    assert network["dynamicVNetAssignmentScope"] == "none"


def test_the_sdk_sees_the_subnet_refusal_as_an_http_response_error(sdk, raw):
    pool_id = uid("net")
    options = m.BatchPoolCreateOptions(
        id=pool_id, vm_size="standard_d2_v2",
        virtual_machine_configuration=m.VirtualMachineConfiguration(
            image_reference=m.BatchVmImageReference(publisher="canonical", offer="ubuntu-24_04-lts", sku="server"),
            node_agent_sku_id="batch.node.ubuntu 24.04"),
        network_configuration=m.NetworkConfiguration(subnet_id="not-a-subnet"))
    with pytest.raises(HttpResponseError) as caught:
        sdk.create_pool(options)
    assert caught.value.status_code == 400
    assert caught.value.error.code == "InvalidPropertyValue"
    assert_no_pool(raw, pool_id)


# ---------------------------------------------------------------- imageReference.virtualMachineImageId

def test_the_recorded_malformed_gallery_image_id_is_400_with_the_recorded_reason(raw):
    # PY-pools entry 4: "gallery" where the path needs "galleries".
    pool_id = uid("img")
    image_id = (f"/subscriptions/{OTHER_SUBSCRIPTION}/resourceGroups/test/providers/Microsoft.Compute/gallery/"
                "FakeGallery/images/FakeImage/versions/version")
    body = pool_body(pool_id, virtualMachineConfiguration={"imageReference": {"virtualMachineImageId": image_id},
                                                           "nodeAgentSKUId": "batch.node.ubuntu 18.04"})
    answer = raw("POST", "/pools", body)
    assert_refused(answer, 400, "InvalidPropertyValue")
    assert values(answer) == {"PropertyName": "virtualMachineImageId", "PropertyValue": image_id,
                              "Reason": IMAGE_ID_FORMATS}
    assert IMAGE_ID_FORMATS.startswith("The specified resource id must be of the format /subscriptions/")
    assert_no_pool(raw, pool_id)


@pytest.mark.parametrize("image_id", ["myimage", f"{GROUP}/Microsoft.Compute/images",
                                      f"{GROUP}/Microsoft.Compute/galleries/g/images/i/versions"])
def test_other_malformed_image_ids_are_400_too(raw, image_id):
    pool_id = uid("img")
    body = pool_body(pool_id, virtualMachineConfiguration={"imageReference": {"virtualMachineImageId": image_id},
                                                           "nodeAgentSKUId": "batch.node.ubuntu 24.04"})
    answer = raw("POST", "/pools", body)
    assert_refused(answer, 400, "InvalidPropertyValue")
    assert values(answer)["PropertyName"] == "virtualMachineImageId"
    assert_no_pool(raw, pool_id)


@pytest.mark.parametrize("tail", ["images/myImage", "galleries/g1/images/i1/versions/1.0.0", "galleries/g1/images/i1"])
def test_a_well_formed_image_id_makes_a_pool_whose_nodes_run_the_usual_image(raw, tail):
    image_id = f"{GROUP}/Microsoft.Compute/{tail}"
    pool_id = add_pool(raw, targetDedicatedNodes=1, virtualMachineConfiguration={
        "imageReference": {"virtualMachineImageId": image_id}, "nodeAgentSKUId": "batch.node.ubuntu 24.04"})
    pool = raw("GET", f"/pools/{pool_id}").json
    assert pool["virtualMachineConfiguration"]["imageReference"] == {"virtualMachineImageId": image_id}
    node = wait_for(lambda: next((n for n in raw("GET", f"/pools/{pool_id}/nodes").json["value"]
                                  if n["state"] == "idle"), None), what="an idle node")
    assert node["virtualMachineInfo"]["imageReference"] == {"virtualMachineImageId": image_id}
    raw("DELETE", f"/pools/{pool_id}")


# ---------------------------------------------------------------- applicationPackageReferences

@pytest.mark.parametrize("reference, key", [({"applicationId": "bad"}, "bad"),
                                            ({"applicationId": "bad", "version": "999"}, "bad:999")])
def test_an_unknown_application_package_at_pool_add_is_409(raw, reference, key):
    # NET-apps: one value per unknown reference, keyed by its id (":version" when it names one).
    pool_id = uid("app")
    answer = raw("POST", "/pools", pool_body(pool_id, applicationPackageReferences=[reference]))
    assert_refused(answer, 409, "InvalidApplicationPackageReferences")
    assert values(answer) == {key: UNKNOWN_PACKAGE}
    assert_no_pool(raw, pool_id)


def test_the_sdk_sees_the_package_refusal_as_resource_exists_error(sdk, raw):
    pool_id = uid("app")
    options = m.BatchPoolCreateOptions(
        id=pool_id, vm_size="standard_d2_v2",
        virtual_machine_configuration=m.VirtualMachineConfiguration(
            image_reference=m.BatchVmImageReference(publisher="canonical", offer="ubuntu-24_04-lts", sku="server"),
            node_agent_sku_id="batch.node.ubuntu 24.04"),
        application_package_references=[m.BatchApplicationPackageReference(application_id="app1", version="1.0")])
    with pytest.raises(ResourceExistsError) as caught:
        sdk.create_pool(options)
    assert caught.value.status_code == 409
    assert caught.value.error.code == "InvalidApplicationPackageReferences"
    assert_no_pool(raw, pool_id)


@pytest.mark.parametrize("method, action", [("PATCH", ""), ("POST", "/updateproperties")])
def test_an_unknown_application_package_on_an_existing_pool_is_409_and_changes_nothing(raw, method, action):
    pool_id = add_pool(raw, metadata=[{"name": "k", "value": "v"}])
    body = {"applicationPackageReferences": [{"applicationId": "bad"}], "metadata": []}
    if action:
        body["certificateReferences"] = []
    etag = raw("GET", f"/pools/{pool_id}").headers["ETag"]
    assert_refused(raw(method, f"/pools/{pool_id}{action}", body), 409, "InvalidApplicationPackageReferences")
    after = raw("GET", f"/pools/{pool_id}")
    assert after.headers["ETag"] == etag
    assert after.json.get("applicationPackageReferences", []) == []
    assert after.json["metadata"] == [{"name": "k", "value": "v"}]


def test_an_auto_pool_with_an_unknown_application_package_refuses_the_job(raw):
    # The service accepts the job and reports InvalidApplicationPackageReferencesInAutoPool as its scheduling
    # error; the emulator makes auto pools at job add and refuses there (README: its limits).
    job_id = uid("job")
    pools_before = {p["id"] for p in raw("GET", "/pools").json["value"]}
    auto = {"poolLifetimeOption": "job", "pool": {"vmSize": "standard_d2_v2", "virtualMachineConfiguration": IMAGE,
                                                  "applicationPackageReferences": [{"applicationId": "bad"}]}}
    answer = raw("POST", "/jobs", {"id": job_id, "poolInfo": {"autoPoolSpecification": auto}})
    assert_refused(answer, 409, "InvalidApplicationPackageReferences")
    assert_no_job(raw, job_id)
    assert {p["id"] for p in raw("GET", "/pools").json["value"]} == pools_before


def test_a_task_with_an_application_package_is_accepted_as_recorded(raw):
    # JS-task: the service does not check a task's packages at add (201): a missing one fails the task when it runs.
    job_id = add_job(raw)
    answer = raw("POST", f"/jobs/{job_id}/tasks", {"id": "Task-AppPackage", "commandLine": "/bin/true",
                                                   "applicationPackageReferences": [{"applicationId": "redacted"}]})
    assert answer.status == 201, answer
    task = raw("GET", f"/jobs/{job_id}/tasks/Task-AppPackage").json
    assert task["applicationPackageReferences"] == [{"applicationId": "redacted"}]


# ---------------------------------------------------------------- a job with a job schedule's id

def test_a_job_with_a_job_schedules_id_is_409_job_schedule_with_same_id_exists(raw, sdk):
    schedule_id = uid("sched")
    answer = raw("POST", "/jobschedules", {"id": schedule_id, "schedule": {"doNotRunUntil": "2099-01-01T00:00:00Z"},
                                           "jobSpecification": {"poolInfo": {"poolId": uid("nopool")}}})
    assert answer.status == 201, answer
    answer = raw("POST", "/jobs", {"id": schedule_id.upper(), "poolInfo": {"poolId": "p"}})   # ids ignore case
    assert_refused(answer, 409, "JobScheduleWithSameIdExists")
    assert answer.json["message"]["value"].startswith(
        "A job schedule with the specified job id exists. Job and job schedule cannot have the same id.\nRequestId:")
    assert_no_job(raw, schedule_id)
    with pytest.raises(ResourceExistsError) as caught:
        sdk.create_job(m.BatchJobCreateOptions(id=schedule_id, pool_info=m.BatchPoolInfo(pool_id="p")))
    assert caught.value.error.code == "JobScheduleWithSameIdExists"
    assert_no_job(raw, schedule_id)
    assert raw("GET", f"/jobschedules/{schedule_id}").json["state"] == "active"


# ---------------------------------------------------------------- job replace (PUT /jobs/{id})

AUTO_POOL = {"poolLifetimeOption": "job", "pool": {"vmSize": "standard_d2_v2", "virtualMachineConfiguration": {
    "imageReference": {"publisher": "Canonical", "offer": "UbuntuServer", "sku": "18.04-LTS", "version": "latest"},
    "nodeAgentSKUId": "batch.node.ubuntu 18.04"}}}


def test_replacing_an_auto_pool_job_is_200_and_keeps_its_pool(raw):
    # PY-jobs entries 0-3: add with an auto pool; PUT priority 500, constraints, the same autoPoolSpecification
    # -> 200; GET: priority, constraints, the first pool spec with keepAlive false, the same auto pool.
    job_id = uid("job")
    assert raw("POST", "/jobs", {"id": job_id, "poolInfo": {"autoPoolSpecification": AUTO_POOL}}).status == 201
    pool_before = raw("GET", f"/jobs/{job_id}").json["executionInfo"]["poolId"]
    changed = dict(AUTO_POOL, pool=dict(AUTO_POOL["pool"], vmSize="standard_d4_v2"))
    answer = raw("PUT", f"/jobs/{job_id}", {"priority": 500, "constraints": {"maxTaskRetryCount": 3},
                                            "poolInfo": {"autoPoolSpecification": changed}})
    assert answer.status == 200, answer
    assert answer.headers["DataServiceId"] == f"{raw.base}/jobs/{job_id}"
    job = raw("GET", f"/jobs/{job_id}").json
    assert job["priority"] == 500 and job["constraints"]["maxTaskRetryCount"] == 3
    auto = job["poolInfo"]["autoPoolSpecification"]
    assert auto["keepAlive"] is False and auto["pool"]["vmSize"] == "standard_d2_v2"   # only keepAlive changes
    assert job["executionInfo"]["poolId"] == pool_before
    answer = raw("PATCH", f"/jobs/{job_id}", {"poolInfo": {"autoPoolSpecification": dict(AUTO_POOL, keepAlive=True)}})
    assert answer.status == 200, answer
    assert raw("GET", f"/jobs/{job_id}").json["poolInfo"]["autoPoolSpecification"]["keepAlive"] is True
    raw("DELETE", f"/jobs/{job_id}")


def test_replacing_a_job_with_a_stale_if_unmodified_since_is_412_through_the_sdk(raw, sdk):
    # batch-facts 22: a stale If-Unmodified-Since -> 412 ConditionNotMet; nothing changes.
    job_id = add_job(raw)
    job = sdk.get_job(job_id)
    job.priority = 100
    with pytest.raises(HttpResponseError) as caught:
        sdk.replace_job(job_id, job, if_unmodified_since=job.last_modified.replace(year=2000))
    assert caught.value.status_code == 412
    assert caught.value.error.code == "ConditionNotMet"
    assert raw("GET", f"/jobs/{job_id}").json["priority"] == 0
    sdk.replace_job(job_id, job, if_unmodified_since=job.last_modified)
    assert raw("GET", f"/jobs/{job_id}").json["priority"] == 100


# ---------------------------------------------------------------- request size

def test_a_body_over_one_mebibyte_is_413_request_body_too_large(raw):
    # As recorded (java TaskTests.failIfPoisonTaskTooLarge[1]): one task with 10,000 resource files.
    job_id = add_job(raw, pool_id=add_pool(raw))
    url = "https://account.blob.core.windows.net/inputs/run/file-{:05d}.bin?sv=2025-01-05"
    files = [{"httpUrl": url.format(i), "filePath": f"in/{i}"} for i in range(10_000)]
    task = {"id": uid("poison"), "commandLine": "/bin/true", "resourceFiles": files}
    answer = raw("POST", f"/jobs/{job_id}/addtaskcollection", {"value": [task]})
    assert_refused(answer, 413, "RequestBodyTooLarge")
    assert values(answer) == {"MaxLimit": "1048576"}
    assert raw("GET", f"/jobs/{job_id}/tasks/{task['id']}").status == 404   # nothing was added
