"""The HTTP layer: the Batch data-plane REST API as the azure-batch SDK calls it.

    server.py    HTTP server and request handler: SharedKey, api-version, faults, dispatch, one-write answers
    http.py      Request, Response, the route table (@route) and the answers routes build
    pools.py     routes: pools, nodes, node counts, supported images, autoscale
    jobs.py      routes: jobs, tasks, task counts, subtasks, job preparation status
    files.py     routes: task and node files
    auth.py      SharedKey verification of each request
    odata.py     $filter, $select, maxresults and paging of list operations
    wire.py      state objects rendered as the service's JSON

Routes change state through service/ and hand work to the task runner only through
service.work.Runtime (``server.runtime``); nothing here imports runtime/.
"""
