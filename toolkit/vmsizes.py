"""What a VM size's name says: whether its nodes have InfiniBand (RDMA), and whether Azure has announced
its retirement. The image an InfiniBand size needs on Batch is named here too.

Azure's size names follow one scheme (learn.microsoft.com, "Azure virtual machine sizes naming
conventions"): Standard_ FAMILY [SUB-FAMILY] VCPUS [-CONSTRAINED VCPUS] FEATURES [_ACCELERATOR] [_VERSION],
e.g. Standard_HB120-96rs_v3. The feature letter `r` means RDMA-capable (InfiniBand) in the HPC families
(H, HB, HC, HX) and the ND GPU family. Depends on nothing else of the repository.
"""

import datetime
import re
from dataclasses import dataclass

# The HPC image Batch runs on InfiniBand sizes: Ubuntu 24.04 with the InfiniBand drivers, HPC-X and other MPIs
# as environment modules (batch-facts §24). Used unless IMAGE_* or NODE_AGENT_SKU_ID are set.
HPC_IMAGE = {"publisher": "microsoft-dsvm", "offer": "ubuntu-hpc", "sku": "2404", "version": "latest"}
HPC_NODE_AGENT_SKU_ID = "batch.node.ubuntu 24.04"

_SIZE = re.compile(r"^standard_(?P<family>hb|hc|hx|nd|h)(?P<vcpus>\d+)(?:-(?P<constrained>\d+))?"
                   r"(?P<features>[a-z]*)(?:_.*)?$", re.IGNORECASE)


@dataclass(frozen=True)
class Retirement:
    """A retirement Azure has announced for some sizes (Azure/Batch#140, 2026-05-15)."""
    what: str                 # the sizes, as the announcement names them
    date: datetime.date
    pattern: re.Pattern[str]


RETIREMENTS = (
    Retirement("HBv2", datetime.date(2027, 5, 31), re.compile(r"^standard_hb\d+(-\d+)?rs_v2$", re.IGNORECASE)),
    Retirement("HC44rs", datetime.date(2027, 5, 31), re.compile(r"^standard_hc44(-\d+)?rs$", re.IGNORECASE)),
    Retirement("D, Ds, Dv2 and Dsv2", datetime.date(2028, 5, 1),
               re.compile(r"^standard_ds?\d+(-\d+)?(_v2)?(_promo)?$", re.IGNORECASE)),
)


def is_infiniband_size(vm_size: str) -> bool:
    """True for an RDMA-capable size: an H, HB, HC, HX or ND size with the feature letter `r` (HB120rs_v3,
    HX176rs, HC44-16rs, ND96isr_H100_v5), whose nodes talk MPI over InfiniBand."""
    match = _SIZE.match(vm_size.strip())
    return bool(match and "r" in match["features"].lower())


def retirement_of(vm_size: str) -> Retirement | None:
    """The announced retirement that covers this size, or None."""
    return next((retirement for retirement in RETIREMENTS if retirement.pattern.match(vm_size.strip())), None)


_ANY_SIZE = re.compile(r"^standard_[a-z]+(?P<vcpus>\d+)(?:-(?P<constrained>\d+))?[a-z]*(?:_.*)?$", re.IGNORECASE)


def cores_of(vm_size: str) -> int | None:
    """The vCPUs a node of this size gives its programs, read from the name (standard_d2s_v5: 2; a
    constrained-core size its active count, Standard_HB120-96rs_v3: 96), or None for a name outside the
    scheme. Older names whose number is not the vCPU count (Standard_D11_v2, Standard_A8) read wrong: the
    callers only warn with it."""
    match = _ANY_SIZE.match(vm_size.strip())
    if not match:
        return None
    return int(match["constrained"] or match["vcpus"]) or None
