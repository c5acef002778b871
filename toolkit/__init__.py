"""Code the toolkit's scripts share, one module per concern.

The scripts (create_pool_job.py, send_task.py, check_task.py) and config_resources.py stay at the top
level, as in the tutorial; what they have in common lives here.
"""
