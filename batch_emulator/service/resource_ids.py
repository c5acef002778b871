"""Checks on the Azure resources a pool names: its subnet, its custom VM image and its application packages.
Pure functions, no state; they raise the service's errors as Microsoft's recorded tests show them.

The emulator's account lives in one fixed, made-up subscription, ACCOUNT_SUBSCRIPTION_ID: a subnet must be in it,
as a real account's subnets must be in the account's subscription. The emulator has no virtual networks, images
or applications of its own: a well-formed subnet or image id is accepted (the nodes are the emulator's usual
ones), and every application package reference is unknown.
"""

from __future__ import annotations

import re
from typing import Any

from .errors import invalid_property, service_error

# The subscription of the emulator's Batch account (never a real one: the service would put its own here).
ACCOUNT_SUBSCRIPTION_ID = "ba7c4e11-0000-4000-8000-00000000e111"

_GUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_NAME = r"[^/]+"
_GROUP = rf"/subscriptions/(?P<subscription>{_GUID})/resourceGroups/{_NAME}/providers"
# ARM ids compare case-insensitively (resource group and provider names included).
SUBNET_ID = re.compile(rf"{_GROUP}/Microsoft\.Network/virtualNetworks/{_NAME}/subnets/{_NAME}", re.IGNORECASE)
IMAGE_IDS = tuple(re.compile(rf"{_GROUP}/Microsoft\.Compute/{tail}", re.IGNORECASE) for tail in (
    rf"images/{_NAME}",                                          # a managed image
    rf"galleries/{_NAME}/images/{_NAME}/versions/{_NAME}",       # an Azure Compute Gallery image version
    rf"galleries/{_NAME}/images/{_NAME}",                        # a gallery image (its latest version)
))

# Word for word what the service answered to a gallery path with "gallery" for "galleries" (Azure/azure-sdk-assets,
# python/sdk/batch/azure-batch/tests/recordings/test_batch.pyTestBatchtest_batch_create_pools[sync].json).
IMAGE_ID_FORMATS = (
    "The specified resource id must be of the format "
    "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.Compute/images/"
    "{imageName}, "
    "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.Compute/galleries/"
    "{galleryName}/images/{galleryImageName}/versions/{galleryImageVersionName}, or "
    "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.Compute/galleries/"
    "{galleryName}/images/{galleryImageName}")
# [inferred] No recorded answer to a malformed subnet id was found: the emulator words it like the image one.
SUBNET_ID_FORMAT = (
    "The specified subnetId must be of the format /subscriptions/{subscriptionId}/resourceGroups/"
    "{resourceGroupName}/providers/Microsoft.Network/virtualNetworks/{virtualNetworkName}/subnets/{subnetName}")
# The value the service gave each unknown reference (azure-sdk-for-net, Batch data-plane
# ApplicationPackageReferencesTests.BadAppPackageReferenceFails).
UNKNOWN_PACKAGE = "The specified application package does not exist."


def check_subnet_id(subnet_id: Any, account_subscription: str = ACCOUNT_SUBSCRIPTION_ID) -> None:
    """networkConfiguration.subnetId: a virtual network subnet's ARM id, in the account's subscription.
    The PropertyName is the bare "subnetId", as the service names it (the recording above)."""
    match = SUBNET_ID.fullmatch(subnet_id) if isinstance(subnet_id, str) else None
    if match is None:
        raise invalid_property("subnetId", subnet_id, SUBNET_ID_FORMAT)
    if match["subscription"].lower() != account_subscription.lower():
        # Recorded word for word (test_batch_create_pools[sync].json, above).
        raise invalid_property("subnetId", subnet_id,
                               "The specified subnetId is in a different subscription and cannot be used with the "
                               f"current Batch account in subscription {account_subscription}")


def check_image_id(image_id: Any) -> None:
    """imageReference.virtualMachineImageId: a managed image, a gallery image or a gallery image version."""
    if not isinstance(image_id, str) or not any(pattern.fullmatch(image_id) for pattern in IMAGE_IDS):
        raise invalid_property("virtualMachineImageId", image_id, IMAGE_ID_FORMATS)


def check_application_packages(references: Any) -> None:
    """A pool's applicationPackageReferences (pool add, auto pool, patch, updateproperties): the service refuses
    an unknown application with 409 InvalidApplicationPackageReferences. The emulator has no applications, so
    every reference is unknown; each gets a value keyed "<applicationId>" or "<applicationId>:<version>", as the
    service keys them (the .NET test above)."""
    if not references:
        return
    values: dict[str, str] = {}
    for reference in references if isinstance(references, list) else [references]:
        if not isinstance(reference, dict) or not reference.get("applicationId"):
            raise invalid_property("applicationPackageReferences", reference,
                                   "Each reference must name an applicationId.")
        key = str(reference["applicationId"])
        if reference.get("version"):
            key = f"{key}:{reference['version']}"
        values[key] = UNKNOWN_PACKAGE
    raise service_error(409, "InvalidApplicationPackageReferences", **values)
