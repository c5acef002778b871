"""The service's model and decisions: what the Batch service knows and decides, without I/O.

    states.py      the state enums (pool, allocation, node, job, task, ...) as the wire writes them
    state.py       Account, Pool, Node, Job, Task; lookups with the service's 404/409 errors
    errors.py      the one error factory: BatchServiceError, service_error and the error body
    validation.py  checks on request bodies (400/409 codes)
    changes.py     change (lock, change, wake the scheduler) and read: how every operation reaches the state
    conditions.py  the HTTP preconditions of a write, checked under the lock
    pools.py       the pool operations of the REST API (one function per request)
    jobs.py        the job operations, pool and job creation, terminate, disable, enable
    tasks.py       the task operations: add, add collection, delete, terminate
    files.py       the file operations: a task's or a node's files listed, read and deleted (through the runtime)
    scheduler.py   the decisions the service takes on its own: pool sizes, node lifecycle, task placement
    lifecycle.py   how a task's run ends: completed, retried, requeued or back to active
    autoscale.py   autoscale sampling and the formula runs that resize a pool
    sharedkey.py   the SharedKey string to sign and signature
    work.py        Runtime: the interface through which operations hand work to the task runner, FileInfo
"""
