"""The runtime: what runs on the emulated nodes (processes, files, blob transfers).

    executor.py   the scheduler thread and the workers: node start-up, job preparation, task runs;
                  implements service.work.Runtime for the HTTP layer
    taskrun.py    one run of a task on its node(s)
    processes.py  start, watch and kill the processes of a node
    blobio.py     resource-file downloads and output-file uploads
"""
