"""Code the toolkit's scripts share, one module per concern.

The scripts (create_pool_job.py, send_task.py, check_task.py, delete_pool_job.py) and config_resources.py
stay at the top level, as in the tutorial; what they have in common lives here (tests/unit/test_toolkit_layers.py
checks the import order):

- errors: ToolkitError and ExitStatus, the exit codes, which every layer imports;
- settings (with envfile, values and commands): reading and checking the settings; checked: what each
  script needs of them, as frozen dataclasses; config_resources.py re-exports them under the tutorial's names;
- cli: the parser, id checks, and run(), which reads the settings once and is the one place that turns an
  exception into a one-line message and an exit code;
- batch: the Batch client with bounded retries, the service's error codes and advice, submission marks,
  MPI checks of a pool;
- retry: which azure-core errors waiting may cure, and the one loop that polls or retries (on a clock
  tests replace);
- autoscale: create_pool_job.py's autoscale formula, its check by the service, and its enabling;
- account: the jobs and pools of the account as check_task.py shows them;
- storage: the blob container client, and the SAS made or checked for it;
- jobs: the clean-up commands the scripts print, and the check of an existing job before anything is created;
- dryrun: the request bodies --dry_run prints, as the SDK sends them, secrets redacted;
- redaction: redact(), which keeps SAS signatures, keys and tokens out of every output.
"""
