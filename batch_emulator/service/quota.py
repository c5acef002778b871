"""The account's core quotas (--dedicated-core-quota, --low-priority-core-quota) and the resize errors they give.

A Batch account may hold so many cores of dedicated nodes, and so many of low-priority (Spot) nodes,
summed over all its pools. A resize that would go beyond (the pool add with its targets, a resize, an
applied autoscale run) allocates the nodes that fit and ends steady, with AccountCoreQuotaReached or
AccountLowPriorityCoreQuotaReached in the pool's resizeErrors; targetDedicatedNodes keeps what was asked.
As on the service, the resizeErrors describe the last resize: the next one replaces them (a later resize or
autoscale run within quota clears them), and a resize that ended short does not grow the pool on its own
when cores are freed later. A node counts from its allocation until it is gone (leaving nodes still hold
their VM). The scheduler (scheduler.py) calls these under the account lock.
"""

from __future__ import annotations

import re

from .errors import ResizeError, resize_error
from .state import Account, Pool

QUOTA_CODES = {True: "AccountCoreQuotaReached", False: "AccountLowPriorityCoreQuotaReached"}   # by dedicated
# Azure VM size names: [tier_]family letters, vCPUs, then feature letters and version (Standard_D16ads_v5).
_SIZE_NAME = re.compile(r"(?:[a-z]+_)?[a-z]+(\d+)", re.IGNORECASE)


def vm_cores(vm_size: str) -> int:
    """The vCPUs of a node of ``vm_size``, read from its name: the number after the family letters
    (standard_d2s_v5: 2, Standard_HB120rs_v3: 120, standard_d16ads_v5: 16). A constrained-core size counts
    its parent's vCPUs (Standard_HB120-16rs_v3: 120), as Azure's quotas do. Older names where that number
    is not the vCPU count (Standard_D11_v2, Standard_A8, Standard_G5) are read the same way; a name
    without a number counts 1."""
    match = _SIZE_NAME.match(vm_size)
    return max(1, int(match.group(1))) if match else 1


def pool_cores(pool: Pool) -> int:
    """The vCPUs of one node of ``pool``."""
    return vm_cores(pool.settings.vm_size)


def quota_of(account: Account, dedicated: bool) -> int | None:
    """The account's core quota for dedicated or low-priority nodes; None: no quota."""
    return account.dedicated_core_quota if dedicated else account.low_priority_core_quota


def cores_in_use(account: Account, dedicated: bool) -> int:
    """The cores the account's dedicated (or low-priority) nodes hold, over all its pools."""
    return sum(pool_cores(pool) for pool in account.pools.values()
               for node in pool.nodes.values() if node.dedicated == dedicated)


def nodes_that_fit(account: Account, pool: Pool, dedicated: bool, wanted: int) -> int:
    """How many of ``wanted`` new nodes of ``pool`` the account's quota lets it allocate now."""
    quota = quota_of(account, dedicated)
    if quota is None:
        return wanted
    free = max(0, quota - cores_in_use(account, dedicated))
    return min(wanted, free // pool_cores(pool))


def quota_error(dedicated: bool) -> ResizeError:
    """The resize error of a resize that the dedicated (or low-priority) core quota cut short."""
    return resize_error(QUOTA_CODES[dedicated])
