"""A local Azure Batch service emulator: the real azure-batch SDK talks to it as to Azure.

Start it:

    python -m batch_emulator
    # prints: Batch emulator listening on http://127.0.0.1:PORT (account devbatchaccount1)
    python -m batch_emulator --port 8090 --root ./.local/batch --max-nodes 4 --time-scale 60 --verbose

and point a client at it:

    from azure.batch import BatchClient
    from azure.core.credentials import AzureNamedKeyCredential
    client = BatchClient("http://127.0.0.1:PORT",
                         AzureNamedKeyCredential(DEFAULT_ACCOUNT_NAME, DEFAULT_ACCOUNT_KEY), retry_total=0)

It serves the Batch data-plane REST API over plain HTTP (or HTTPS with --tls-cert/--tls-key) with
SharedKey authentication and Microsoft Entra ID tokens it issues itself (--allowed-auth; its
managed-identity endpoint /_emulator/identity/token serves azure-identity, see api/identity.py),
and really runs the tasks: every node is a directory under ROOT/nodes/<nodeId>/ with its
own loopback address (127.0.0.2, 127.0.0.3, ...); command lines run as local processes
with the standard AZ_BATCH_* variables, MPI command lines (mpirun --host
$AZ_BATCH_HOST_LIST) run all ranks locally through HYDRA_LAUNCHER=fork; resource files are
downloaded and output files uploaded with azure-storage-blob (e.g. to Azurite).
Fault injection (429/503, 500, delays, broken connections): --fault SPEC or /_emulator/faults, see faults/.

The code is layered (README.md, "Map of the code"): api/ (HTTP) and runtime/ (processes, files)
both build on service/ (state and decisions), which uses formula/ (the autoscale language);
faults/ is used by api/; __main__.py wires them together.

LIMITATIONS
- With --isolation none, no isolation between nodes: all "nodes" are directories on this
  machine and every process runs as the user who started the emulator (userIdentity and
  elevation are ignored), with the emulator's environment minus credential-looking variables.
  --isolation netns (root) makes each node a network namespace with its own sshd and root
  filesystem, a private layer over the node image (runtime/isolation.py); its nodes have no
  route out of the machine. In --isolation none each node has a virtualenv of its own.
- State is in memory only: stopping the emulator forgets every pool, job and task and
  kills every process it started; with the default --root the node directories go too.
- Autoscale formulas are evaluated (formula/: the documented language) on a clock
  --time-scale times faster than the service's (default 300: a 5-minute interval is 1 s,
  samples every 0.1 s, GetSample look-backs scaled alike; time() keeps the real clock),
  one interval after create / enable and then every interval; pools resize to the targets, capped by
  --max-nodes, honouring $NodeDeallocationOption. Resource metrics ($CPUPercent, ...)
  are refused, $PreemptedNodeCount is always 0; undocumented details are choices listed
  in README.md.
- Absent: job schedules (auto pools live with their job only), certificates, applications,
  node users/remote login/reboot/reimage/remove nodes, task reactivate and update, usage
  metrics and statistics ($expand=stats), containers, mounts, start-task/node errors other
  than start task failure, autoStorageContainerName.
- Simplified: node allocation takes well under a second and fails only on a core quota
  (--dedicated-core-quota / --low-priority-core-quota: AccountCoreQuotaReached and
  AccountLowPriorityCoreQuotaReached in the pool's resizeErrors); resize timeouts
  and a resize's nodeDeallocationOption are ignored (running tasks finish, taskcompletion);
  a job release task is accepted but never run; a job preparation task with
  waitForSuccess=false still runs before the task (its failure does not block); the
  15-minute clock-skew check of SharedKey is skipped; task retention times are ignored
  (a task's files stay until its node leaves the pool and takes them along, as on the service);
  a deleted pool or job shows
  "deleting" for half a second, not seconds.
"""

DEFAULT_ACCOUNT_NAME = "devbatchaccount1"
# A fixed, public development key (like Azurite's devstoreaccount1 key). Never use it for anything real.
# The value its managed-identity endpoint expects in X-IDENTITY-HEADER (the IDENTITY_HEADER variable of a
# client): a fixed development default, public like the key above.
DEFAULT_IDENTITY_HEADER = "batch-emulator-dev-identity-header"
DEFAULT_ACCOUNT_KEY = "JCdh/14YnBLlPP3/QtdQY4nwPZL2Dogd+tYZSeQSkADQEOncwCW+gipIPKWhS2zDAQvXMaOtoGuFliY6BQwqhg=="
