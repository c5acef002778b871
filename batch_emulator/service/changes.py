"""How every operation reaches the account's state: under its lock, and a change wakes the scheduler.

The HTTP layer calls one operation of service/pools.py, jobs.py or tasks.py per request; those
operations run their change through ``change`` (lock, check, mutate, wake) and their reads through
``read`` (lock only). ``Version`` is what a write answers with: the id, ETag and last-modified time
of the object it changed, taken while the lock was held.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from .state import Account, Job, Pool, Task

T = TypeVar("T")


@dataclass(frozen=True)
class Version:
    """The id, ETag and last-modified time of a pool, job or task right after a change."""
    id: str
    etag: str
    last_modified: datetime


def version(entity: Pool | Job | Task) -> Version:
    return Version(entity.id, entity.etag, entity.last_modified)


def change(account: Account, operation: Callable[[], T]) -> T:
    """Run ``operation`` under the account lock, then tell the scheduler something changed.

    An operation that raises changed nothing (its checks come before its changes): no wake then."""
    with account.lock:
        result = operation()
    account.wake()
    return result


def read(account: Account, query: Callable[[], T]) -> T:
    """Run ``query`` under the account lock: a consistent view of objects worker threads also change."""
    with account.lock:
        return query()
