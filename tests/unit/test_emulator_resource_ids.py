"""The checks on the Azure resources a pool names (service/resource_ids.py), and what a PUT or PATCH keeps of an
auto pool job's pool (service/jobs.py auto_pool_info_after): pure functions, no emulator running."""

import pytest

from batch_emulator.service import jobs
from batch_emulator.service.errors import BatchServiceError
from batch_emulator.service.resource_ids import (
    ACCOUNT_SUBSCRIPTION_ID,
    IMAGE_ID_FORMATS,
    UNKNOWN_PACKAGE,
    check_application_packages,
    check_image_id,
    check_subnet_id,
)
from batch_emulator.service.state import Job
from batch_emulator.service.validation import validate_job_patch

GROUP = f"/subscriptions/{ACCOUNT_SUBSCRIPTION_ID}/resourceGroups/rg/providers"
SUBNET = f"{GROUP}/Microsoft.Network/virtualNetworks/vnet/subnets/default"


def refused(check, *args):
    with pytest.raises(BatchServiceError) as caught:
        check(*args)
    return caught.value


def test_a_subnet_of_the_account_subscription_passes_whatever_its_case():
    check_subnet_id(SUBNET)
    check_subnet_id(SUBNET.upper().replace(ACCOUNT_SUBSCRIPTION_ID.upper(), ACCOUNT_SUBSCRIPTION_ID))
    check_subnet_id(SUBNET.replace(ACCOUNT_SUBSCRIPTION_ID, ACCOUNT_SUBSCRIPTION_ID.upper()))


def test_a_subnet_of_another_subscription_names_the_accounts():
    other = SUBNET.replace(ACCOUNT_SUBSCRIPTION_ID, "00000000-0000-0000-0000-000000000000")
    error = refused(check_subnet_id, other)
    assert (error.status, error.code) == (400, "InvalidPropertyValue")
    assert dict(error.values) == {
        "PropertyName": "subnetId", "PropertyValue": other,
        "Reason": "The specified subnetId is in a different subscription and cannot be used with the current Batch "
                  f"account in subscription {ACCOUNT_SUBSCRIPTION_ID}"}


@pytest.mark.parametrize("subnet", ["", "default", 42, None, f"{SUBNET}/", f"{SUBNET}/more",
                                    SUBNET.replace(ACCOUNT_SUBSCRIPTION_ID, "sub"),
                                    SUBNET.replace("/subnets/default", ""),
                                    SUBNET.replace("Microsoft.Network", "Microsoft.ClassicNetwork"),
                                    SUBNET.replace("/resourceGroups/rg", "/resourceGroups/")])
def test_a_malformed_subnet_id_is_invalid(subnet):
    error = refused(check_subnet_id, subnet)
    assert (error.status, error.code) == (400, "InvalidPropertyValue")
    assert dict(error.values)["PropertyName"] == "subnetId"
    assert dict(error.values)["Reason"].startswith("The specified subnetId must be of the format /subscriptions/")


@pytest.mark.parametrize("tail", ["images/img", "galleries/g/images/i/versions/1.0.0", "galleries/g/images/i",
                                  "IMAGES/img"])
def test_the_three_image_id_forms_pass(tail):
    check_image_id(f"{GROUP}/Microsoft.Compute/{tail}")
    # The image's subscription is not checked: no recording shows the service refusing another one.
    check_image_id(f"/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/"
                   f"Microsoft.Compute/{tail}")


@pytest.mark.parametrize("image_id", ["img", None, f"{GROUP}/Microsoft.Compute/gallery/g/images/i/versions/v",
                                      f"{GROUP}/Microsoft.Compute/images", f"{GROUP}/Microsoft.Compute/images/a/b",
                                      f"{GROUP}/Microsoft.Network/images/img"])
def test_a_malformed_image_id_gets_the_recorded_reason(image_id):
    error = refused(check_image_id, image_id)
    assert (error.status, error.code) == (400, "InvalidPropertyValue")
    assert dict(error.values) == {"PropertyName": "virtualMachineImageId", "PropertyValue": str(image_id),
                                  "Reason": IMAGE_ID_FORMATS}


def test_no_application_packages_pass():
    check_application_packages(None)
    check_application_packages([])


def test_every_application_package_is_unknown_each_with_its_own_value():
    error = refused(check_application_packages, [{"applicationId": "a"}, {"applicationId": "b", "version": "2"}])
    assert (error.status, error.code) == (409, "InvalidApplicationPackageReferences")
    assert error.values == [("a", UNKNOWN_PACKAGE), ("b:2", UNKNOWN_PACKAGE)]
    assert error.message.startswith("One or more application package references could not be satisfied.")


@pytest.mark.parametrize("references", [[{"version": "1"}], ["app"], [{"applicationId": ""}]])
def test_a_reference_without_an_application_id_is_invalid(references):
    error = refused(check_application_packages, references)
    assert (error.status, error.code) == (400, "InvalidPropertyValue")


AUTO = {"poolLifetimeOption": "job", "pool": {"vmSize": "standard_d2_v2"}}


def auto_pool_job():
    job = Job(id="j", spec={"id": "j", "poolInfo": {"autoPoolSpecification": AUTO}})
    job.auto_pool_id = "POOL-GUID"
    return job


def test_a_put_keeps_an_auto_pool_jobs_pool_and_takes_only_keep_alive():
    job = auto_pool_job()
    other = {"poolLifetimeOption": "job", "keepAlive": True, "pool": {"vmSize": "standard_d64_v3"}}
    body = validate_job_patch({"poolInfo": {"autoPoolSpecification": other}}, job, replace=True)
    kept = jobs.auto_pool_info_after(job, body, replace=True)["poolInfo"]
    assert kept == {"autoPoolSpecification": dict(AUTO, keepAlive=True)}
    body = validate_job_patch({"poolInfo": {"autoPoolSpecification": AUTO}}, job, replace=True)
    assert jobs.auto_pool_info_after(job, body, replace=True)["poolInfo"]["autoPoolSpecification"]["keepAlive"] \
        is False   # a PUT that omits keepAlive: its default


def test_a_patch_without_keep_alive_leaves_it():
    job = auto_pool_job()
    job.spec["poolInfo"]["autoPoolSpecification"] = dict(AUTO, keepAlive=True)
    body = validate_job_patch({"poolInfo": {"autoPoolSpecification": AUTO}, "priority": 3}, job)
    after = jobs.auto_pool_info_after(job, body, replace=False)
    assert after["poolInfo"]["autoPoolSpecification"]["keepAlive"] is True
    assert after["priority"] == 3


@pytest.mark.parametrize("pool_info", [{"poolId": "p"}, {"autoPoolSpecification": dict(AUTO, keepAlive="yes")}])
def test_an_auto_pool_job_refuses_a_pool_id_or_a_keep_alive_that_is_not_a_boolean(pool_info):
    error = refused(validate_job_patch, {"poolInfo": pool_info}, auto_pool_job(), True)
    assert (error.status, error.code) == (400, "InvalidPropertyValue")


def test_a_job_on_a_pool_id_still_refuses_an_auto_pool():
    job = Job(id="j", spec={"id": "j", "poolInfo": {"poolId": "p"}})
    error = refused(validate_job_patch, {"poolInfo": {"autoPoolSpecification": AUTO}}, job, True)
    assert dict(error.values)["PropertyName"] == "poolInfo.autoPoolSpecification"
