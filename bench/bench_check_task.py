"""How far check_task.py is from what the SDKs can do: time and requests, on the local stack.

    .venv/bin/python bench/bench_check_task.py [--jobs 50] [--tasks 20] [--repeat 3] [--az PATH]
    .venv/bin/python bench/bench_check_task.py --jobs 5 --tasks 4        # a quick run

It starts Azurite and the Batch emulator (tools/local_stack.py), seeds JOBS jobs of TASKS
finished tasks each (`/bin/bash -c 'echo ...'`, stdout.txt and stderr.txt uploaded by the
emulator to `<job_id>/<task_id>/` in the blob container, as send_task.py's tasks do), then
measures, each as a fresh `python` process (start-up and imports included, like a user's run):

1. check_task.py's re-run (every file already downloaded) against the SDK floor: listing the
   jobs and asking each for its task counts with azure-batch (`list_jobs` then
   `get_job_task_counts` per job), sequentially and in a thread pool; the faster is the floor.
2. check_task.py's first run (2 x JOBS x TASKS files) against a raw azure-storage-blob download
   of the same blobs (list the container, `download_blob` in a thread pool, written to disk).
3. The `az batch` loop (`az batch job list`, then `az batch job task-counts show` per job), when the
   Azure CLI is on PATH or given by --az; otherwise one line says how to include it.
4. The requests of one re-run, counted by a small HTTP proxy that this process puts in front of
   the emulator and of Azurite (check_task.py is pointed at it by its environment variables).

Times are medians of --repeat runs (the az loop runs once). It prints a table of the figures
beside their baselines and the issue's targets ("meets"/"misses"), and asserts nothing: it exits
0 whatever the figures, 1 only when it could not measure (the stack, the seeding or a script
failed). Everything it starts (services, proxy, child processes) is stopped before it exits.
On a loaded machine the figures are rough; compare runs made on the same machine.

Paths: the repository's layout is known only in the block below the imports; local_stack is
loaded from its file, so nothing is added to sys.path.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import importlib.util
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

# --- the repository's layout: the only place that knows it ---------------------------------------
THIS_FILE = Path(__file__).resolve()
REPO_ROOT = THIS_FILE.parent.parent
LOCAL_STACK_FILE = REPO_ROOT / "tools" / "local_stack.py"
CHECK_TASK = REPO_ROOT / "check_task.py"
# -------------------------------------------------------------------------------------------------

POOL_ID = "bench-pool"
POOL_NODES = 2
SLOTS_PER_NODE = 4  # plain tasks share a node, so the 2 nodes run 8 seeding tasks at once
TASKS_PER_CALL = 100  # the most one addtaskcollection request takes
PARALLEL = 8  # threads of the baselines, as check_task.py's PARALLEL_REQUESTS
CHILD_TIMEOUT = 900.0
AZ_TIMEOUT = 120.0
SEED_TIMEOUT = 1800.0
AZ_HINT = ("include it: python3 -m venv /tmp/azcli && /tmp/azcli/bin/pip install azure-cli, "
           "then --az /tmp/azcli/bin/az")
# Targets of the issue.
RERUN_VS_FLOOR = 1.5
EXTRA_REQUESTS = 5
FIRST_VS_RAW = 2.0
FASTER_THAN_AZ = 30.0


def load_local_stack() -> ModuleType:
    """tools/local_stack.py as a module, without putting tools/ on sys.path."""
    spec = importlib.util.spec_from_file_location("local_stack", LOCAL_STACK_FILE)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {LOCAL_STACK_FILE}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


# --- child processes: the baselines, each run as `python bench_check_task.py --child NAME` ---------

def batch_client_from_env() -> Any:
    from azure.batch import BatchClient
    from azure.core.credentials import AzureNamedKeyCredential

    credential = AzureNamedKeyCredential(os.environ["AZURE_BATCH_ACCOUNT"], os.environ["AZURE_BATCH_ACCESS_KEY"])
    return BatchClient(os.environ["AZURE_BATCH_ENDPOINT"], credential)


def child_floor(parallel: bool) -> None:
    """The SDK floor of a re-run: list the jobs, then the task counts of each."""
    client = batch_client_from_env()
    job_ids = [job.id for job in client.list_jobs(select=["id"])]
    if parallel:
        with ThreadPoolExecutor(PARALLEL) as pool:
            counts = list(pool.map(lambda job_id: client.get_job_task_counts(job_id).task_counts, job_ids))
    else:
        counts = [client.get_job_task_counts(job_id).task_counts for job_id in job_ids]
    print(f"{len(job_ids)} jobs, {sum(c.completed for c in counts)} completed tasks")


def child_raw_download(target: Path) -> None:
    """The raw download of a first run: list the container, download every blob to `target`."""
    from azure.storage.blob import ContainerClient

    container = ContainerClient.from_container_url(os.environ["BLOB_CONTAINER_URL"])

    def download(name: str) -> None:
        path = target / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as file:
            container.download_blob(name).readinto(file)

    names = list(container.list_blob_names())
    with ThreadPoolExecutor(PARALLEL) as pool:
        list(pool.map(download, names))
    print(f"{len(names)} blobs downloaded")


CHILDREN: dict[str, Callable[[Path], None]] = {
    "floor-sequential": lambda _: child_floor(parallel=False),
    "floor-threads": lambda _: child_floor(parallel=True),
    "raw-download": child_raw_download,
}


# --- a counting HTTP proxy -------------------------------------------------------------------------

_LITERAL_SEGMENT = re.compile(r"^(jobs|tasks|pools|taskcounts|files|nodes|nodecounts|subtasksinfo|addtaskcollection|"
                              r"jobpreparationandreleasetaskstatus|supportedimages|lifetimejobstats)$", re.IGNORECASE)


def request_kind(method: str, path: str, status: int, blob: bool) -> str:
    """A request's route, ids replaced, and its status: 'GET /jobs/{id}/taskcounts 200', 'HEAD blob 200'."""
    parts = urlsplit(path)
    if blob:
        depth = len([s for s in parts.path.split("/") if s])
        route = f"{'container' if depth <= 2 else 'blob'}{' list' if 'comp=list' in parts.query else ''}"
    else:
        route = "/" + "/".join(s if _LITERAL_SEGMENT.match(s) else "{id}" for s in parts.path.split("/") if s)
    return f"{method} {route} {status}"


@dataclass
class CountingProxy:
    """Forwards HTTP to `upstream` (http://host:port) and counts the requests by route."""

    upstream: str
    blob: bool
    counts: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def take(self) -> Counter[str]:
        with self.lock:
            counts, self.counts = self.counts, Counter()
        return counts

    @contextlib.contextmanager
    def running(self) -> Iterator[CountingProxy]:
        proxy = self
        target = urlsplit(self.upstream)
        upstream_host, upstream_port = target.hostname or "127.0.0.1", target.port or 80

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet: the counts are what matters
                pass

            def forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "keep-alive")}
                upstream: http.client.HTTPConnection | None = getattr(self, "upstream_connection", None)
                if upstream is None:
                    upstream = http.client.HTTPConnection(upstream_host, upstream_port, timeout=120)
                    self.upstream_connection: http.client.HTTPConnection | None = upstream
                try:
                    upstream.request(self.command, self.path, body=body or None, headers=headers)
                    answer = upstream.getresponse()
                    payload = answer.read()
                except (OSError, http.client.HTTPException):
                    upstream.close()
                    self.upstream_connection = None
                    self.send_error(502)
                    return
                with proxy.lock:
                    proxy.counts[request_kind(self.command, self.path, answer.status, proxy.blob)] += 1
                self.send_response_only(answer.status, answer.reason)
                skipped = {"transfer-encoding", "connection", "keep-alive"}
                if self.command != "HEAD":
                    skipped.add("content-length")
                for name, value in answer.getheaders():
                    if name.lower() not in skipped:
                        self.send_header(name, value)
                if self.command != "HEAD":
                    self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = forward

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self.server = server
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()
            thread.join(10)


# --- measuring -------------------------------------------------------------------------------------

class MeasureError(Exception):
    """A run that should have worked did not: the bench cannot give that figure."""


def run_once(argv: Sequence[str], env: Mapping[str, str], cwd: Path, timeout: float = CHILD_TIMEOUT) -> float:
    started = time.perf_counter()
    try:
        result = subprocess.run(list(argv), env=dict(env), cwd=cwd, capture_output=True, text=True, timeout=timeout,
                                stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise MeasureError(f"{Path(argv[1]).name if len(argv) > 1 else argv[0]} took over {timeout:.0f} s") from None
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        tail = (result.stderr.strip() or result.stdout.strip()).splitlines()[-3:]
        raise MeasureError(f"{' '.join(Path(a).name for a in argv[:3])} exited {result.returncode}: {' | '.join(tail)}")
    return seconds


def median_of(repeat: int, once: Callable[[int], float]) -> tuple[float, list[float]]:
    times = [once(attempt) for attempt in range(repeat)]
    return statistics.median(times), times


def shown(times: list[float]) -> str:
    return ", ".join(f"{t:.2f}" for t in times)


@dataclass
class Figures:
    seed_create: float = 0.0
    seed_run: float = 0.0
    files: int = 0
    rerun: float | None = None
    floor_sequential: float | None = None
    floor_threads: float | None = None
    first: float | None = None
    raw: float | None = None
    az_loop: float | None = None
    az_note: str = ""
    python_start: float | None = None
    batch_requests: Counter[str] = field(default_factory=Counter)
    blob_requests: Counter[str] = field(default_factory=Counter)
    floor_requests: Counter[str] = field(default_factory=Counter)
    first_batch_requests: Counter[str] = field(default_factory=Counter)
    first_blob_requests: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)


def seed(local_stack: ModuleType, stack: Any, jobs: int, tasks: int, figures: Figures) -> list[str]:
    """Create the pool, JOBS jobs of TASKS tasks each, and wait until every task has completed."""
    from azure.batch import BatchClient, models
    from azure.core.credentials import AzureNamedKeyCredential

    client = BatchClient(stack.batch_endpoint, AzureNamedKeyCredential(stack.batch_account, stack.batch_key))
    upload_sas_url = local_stack.container_sas_url(stack, "cw")  # what send_task.py gives its tasks
    started = time.perf_counter()
    client.create_pool(models.BatchPoolCreateOptions(
        id=POOL_ID, vm_size="standard_d2s_v5", target_dedicated_nodes=POOL_NODES, task_slots_per_node=SLOTS_PER_NODE,
        virtual_machine_configuration=models.VirtualMachineConfiguration(
            image_reference=models.BatchVmImageReference(publisher="canonical", offer="ubuntu-24_04-lts",
                                                         sku="server"),
            node_agent_sku_id="batch.node.ubuntu 24.04")))
    job_ids = [f"bench-job-{number:03d}" for number in range(jobs)]

    def task(job_id: str, task_id: str) -> models.BatchTaskCreateOptions:
        upload = models.OutputFile(
            file_pattern="../std*.txt",
            destination=models.OutputFileDestination(container=models.OutputFileBlobContainerDestination(
                container_url=upload_sas_url, path=f"{job_id}/{task_id}")),
            upload_options=models.OutputFileUploadConfiguration(
                upload_condition=models.OutputFileUploadCondition.TASK_COMPLETION))
        return models.BatchTaskCreateOptions(id=task_id, command_line=f"/bin/bash -c 'echo {job_id} {task_id}'",
                                             output_files=[upload])

    for job_id in job_ids:
        client.create_job(models.BatchJobCreateOptions(id=job_id, pool_info=models.BatchPoolInfo(pool_id=POOL_ID)))
        task_ids = [f"task-{number:03d}" for number in range(tasks)]
        for start in range(0, tasks, TASKS_PER_CALL):
            group = models.BatchTaskGroup(task_values=[task(job_id, t) for t in task_ids[start:start + TASKS_PER_CALL]])
            result = client.create_task_collection(job_id, group)
            refused = [r for r in result.result_values or [] if r.error is not None]
            if refused:
                raise MeasureError(f"the emulator refused {len(refused)} task(s) of {job_id}: {refused[0].error}")
    figures.seed_create = time.perf_counter() - started
    started = time.perf_counter()
    deadline = time.monotonic() + SEED_TIMEOUT
    failed = 0
    for job_id in job_ids:  # one job at a time: a request per job per poll, not per task
        while True:
            counts = client.get_job_task_counts(job_id).task_counts
            if counts.completed >= tasks:
                failed += counts.failed
                break
            if time.monotonic() > deadline:
                raise MeasureError(f"seeding: {job_id} still has {tasks - counts.completed} task(s) running")
            time.sleep(0.2)
    figures.seed_run = time.perf_counter() - started
    if failed:
        figures.notes.append(f"{failed} seeded task(s) failed (their outputs may be missing)")
    client.close()
    return job_ids


def count_blobs(local_stack: ModuleType, stack: Any) -> int:
    from azure.storage.blob import ContainerClient

    with ContainerClient.from_container_url(local_stack.container_sas_url(stack, "rl")) as container:
        return sum(1 for _ in container.list_blob_names())


def find_az(given: str | None) -> str | None:
    """The absolute path of the az to use (the loop runs it from another directory)."""
    if given:
        return str(Path(given).resolve()) if Path(given).is_file() and os.access(given, os.X_OK) else None
    return shutil.which("az")


def az_loop(az: str, stack: Any, workdir: Path, figures: Figures) -> None:
    """`az batch job list` then `az batch job task-counts show` per job, timed as a shell loop would run them."""
    env = {name: os.environ[name] for name in ("PATH", "HOME", "LANG") if name in os.environ}
    config_dir = workdir / "az-config"
    config_dir.mkdir()
    env.update(AZURE_CONFIG_DIR=str(config_dir), AZURE_CORE_COLLECT_TELEMETRY="false",
               AZURE_CORE_ONLY_SHOW_ERRORS="true", AZURE_CORE_NO_COLOR="true")
    account = ["--account-name", stack.batch_account, "--account-key", stack.batch_key,
               "--account-endpoint", stack.batch_endpoint]

    def az_run(*words: str) -> str:
        try:
            result = subprocess.run([az, "batch", *words, *account], env=env, cwd=workdir, capture_output=True,
                                    text=True, timeout=AZ_TIMEOUT, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise MeasureError(f"az batch {words[0]} took over {AZ_TIMEOUT:.0f} s") from None
        if result.returncode != 0:
            tail = " | ".join(result.stderr.strip().splitlines()[-2:])
            raise MeasureError(f"az batch {' '.join(words[:2])} exited {result.returncode}: {tail}")
        return result.stdout

    az_run("job", "list", "--query", "[].id", "--output", "tsv")  # untimed: az builds its command index once
    started = time.perf_counter()
    job_ids = az_run("job", "list", "--query", "[].id", "--output", "tsv").split()
    for job_id in job_ids:
        az_run("job", "task-counts", "show", "--job-id", job_id, "--output", "json")
    figures.az_loop = time.perf_counter() - started


def measure(args: argparse.Namespace, figures: Figures, local_stack: ModuleType) -> None:
    python = sys.executable
    with tempfile.TemporaryDirectory(prefix="bench-check-task-") as temp:
        workdir = Path(temp)
        print(f"Starting the local stack and seeding {args.jobs} jobs x {args.tasks} tasks...", flush=True)
        with local_stack.start_stack(workdir / "stack") as stack:
            env = local_stack.script_environment(stack)
            seed(local_stack, stack, args.jobs, args.tasks, figures)
            figures.files = count_blobs(local_stack, stack)
            print(f"  seeded in {figures.seed_create + figures.seed_run:.1f} s; {figures.files} blobs", flush=True)
            if figures.files != 2 * args.jobs * args.tasks:
                figures.notes.append(f"{figures.files} blobs in the container, not {2 * args.jobs * args.tasks}")

            def check_task(output_dir: Path, run_env: Mapping[str, str] = env) -> float:
                return run_once([python, str(CHECK_TASK), "--output_dir", str(output_dir)], run_env, workdir)

            def child(name: str, target: Path, run_env: Mapping[str, str] = env) -> float:
                return run_once([python, str(THIS_FILE), "--child", name, "--child-dir", str(target)], run_env, workdir)

            figures.python_start, _ = median_of(args.repeat, lambda _: run_once(
                [python, "-c", "import azure.batch, azure.storage.blob"], env, workdir))

            print("Measuring the first run and the raw download...", flush=True)
            figures.first, times = median_of(args.repeat, lambda n: check_task(workdir / f"first-{n}"))
            print(f"  check_task.py first run: {shown(times)} s", flush=True)
            figures.raw, times = median_of(args.repeat, lambda n: child("raw-download", workdir / f"raw-{n}"))
            print(f"  raw download: {shown(times)} s", flush=True)
            downloaded = workdir / "first-0"
            for n in range(1, args.repeat):  # keep one full copy for the re-runs
                shutil.rmtree(workdir / f"first-{n}", ignore_errors=True)
                shutil.rmtree(workdir / f"raw-{n}", ignore_errors=True)

            print("Measuring the re-run and the SDK floor...", flush=True)
            figures.rerun, times = median_of(args.repeat, lambda _: check_task(downloaded))
            print(f"  check_task.py re-run: {shown(times)} s", flush=True)
            figures.floor_sequential, times = median_of(args.repeat, lambda _: child("floor-sequential", workdir))
            print(f"  SDK floor, sequential: {shown(times)} s", flush=True)
            figures.floor_threads, times = median_of(args.repeat, lambda _: child("floor-threads", workdir))
            print(f"  SDK floor, {PARALLEL} threads: {shown(times)} s", flush=True)

            print("Counting requests through a proxy...", flush=True)
            batch_proxy, blob_proxy = CountingProxy(stack.batch_endpoint, blob=False), \
                CountingProxy(stack.blob_endpoint, blob=True)
            with batch_proxy.running(), blob_proxy.running():
                blob_origin = "{0.scheme}://{0.netloc}".format(urlsplit(stack.blob_endpoint))
                proxied = dict(env, AZURE_BATCH_ENDPOINT=batch_proxy.url,
                               BLOB_CONTAINER_URL=env["BLOB_CONTAINER_URL"].replace(blob_origin, blob_proxy.url, 1))
                check_task(downloaded, proxied)
                figures.batch_requests, figures.blob_requests = batch_proxy.take(), blob_proxy.take()
                child("floor-threads", workdir, proxied)
                figures.floor_requests = batch_proxy.take()
                check_task(workdir / "first-proxied", proxied)
                figures.first_batch_requests, figures.first_blob_requests = batch_proxy.take(), blob_proxy.take()

            az = find_az(args.az)
            if az is None:
                why = f"--az {args.az} is not an executable file" if args.az else "az is not on PATH"
                figures.az_note = f"az loop skipped: {why}; {AZ_HINT}"
            else:
                print(f"Timing the az loop ({az}: 1 + {args.jobs} commands)...", flush=True)
                try:
                    az_loop(az, stack, workdir, figures)
                except MeasureError as error:
                    figures.az_note = f"az loop failed: {local_stack.redact(str(error))}"
        print("Local stack stopped.", flush=True)


# --- the report ------------------------------------------------------------------------------------

def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("meets" if ok else "misses")


def breakdown(counts: Counter[str]) -> str:
    return ", ".join(f"{n} x {kind}" for kind, n in counts.most_common()) or "none"


def report(args: argparse.Namespace, figures: Figures) -> None:
    jobs, files = args.jobs, 2 * args.jobs * args.tasks
    floor = min(t for t in (figures.floor_sequential, figures.floor_threads) if t is not None) \
        if figures.floor_sequential is not None or figures.floor_threads is not None else None
    batch_total = sum(figures.batch_requests.values())
    rows: list[tuple[str, str, str, str, str, str]] = []

    def seconds(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f} s"

    def ratio(a: float | None, b: float | None) -> tuple[str, float | None]:
        if a is None or b is None or b == 0:
            return "-", None
        return f"{a / b:.2f}x", a / b

    text, value = ratio(figures.rerun, floor)
    rows.append((f"re-run, {jobs} jobs x {args.tasks} tasks downloaded", seconds(figures.rerun),
                 f"SDK floor {seconds(floor)}", text, f"<= {RERUN_VS_FLOOR}x",
                 verdict(None if value is None else value <= RERUN_VS_FLOOR)))
    floor_total = sum(figures.floor_requests.values())
    rows.append(("re-run, Batch requests", str(batch_total), f"SDK floor {floor_total}",
                 ratio(float(batch_total), float(floor_total))[0], f"<= {jobs + EXTRA_REQUESTS}",
                 verdict(batch_total <= jobs + EXTRA_REQUESTS if figures.batch_requests else None)))
    text, value = ratio(figures.first, figures.raw)
    rows.append((f"first run, {files} files", seconds(figures.first), f"raw blob download {seconds(figures.raw)}",
                 text, f"<= {FIRST_VS_RAW}x", verdict(None if value is None else value <= FIRST_VS_RAW)))
    text, value = ratio(figures.az_loop, figures.rerun)
    rows.append((f"re-run vs the az loop ({jobs + 1} az calls)", seconds(figures.rerun),
                 f"az loop {seconds(figures.az_loop)}", "-" if value is None else f"{value:.1f}x faster",
                 f">= {FASTER_THAN_AZ:.0f}x faster", verdict(None if value is None else value >= FASTER_THAN_AZ)))
    header = ("measure", "toolkit", "baseline", "ratio", "target", "result")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    print()
    print(f"check_task.py on the local stack: {jobs} jobs x {args.tasks} tasks, medians of {args.repeat} "
          f"(python {sys.version.split()[0]}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f})")
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print(" | ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
    print()
    print(f"seeding: {figures.seed_create:.1f} s to create the pool, {jobs} jobs and {jobs * args.tasks} tasks "
          f"({-(-args.tasks // TASKS_PER_CALL)} addtaskcollection call(s) per job), {figures.seed_run:.1f} s until "
          f"every task completed ({POOL_NODES} nodes x {SLOTS_PER_NODE} slots)")
    print(f"SDK floor: sequential {seconds(figures.floor_sequential)}, {PARALLEL} threads "
          f"{seconds(figures.floor_threads)}; a bare `python -c 'import azure.batch, azure.storage.blob'` "
          f"takes {seconds(figures.python_start)}")
    print(f"re-run requests: Batch {batch_total} ({breakdown(figures.batch_requests)}); "
          f"blob {sum(figures.blob_requests.values())} ({breakdown(figures.blob_requests)})")
    print(f"first-run requests: Batch {sum(figures.first_batch_requests.values())} "
          f"({breakdown(figures.first_batch_requests)}); blob {sum(figures.first_blob_requests.values())} "
          f"({breakdown(figures.first_blob_requests)})")
    print(f"SDK floor requests: {floor_total} ({breakdown(figures.floor_requests)})")
    if figures.az_note:
        print(figures.az_note)
    for note in figures.notes:
        print(f"note: {note}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--jobs", type=int, default=50, help="jobs to seed (default 50)")
    parser.add_argument("--tasks", type=int, default=20, help="finished tasks per job (default 20)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per timed figure; the median is shown (default 3)")
    parser.add_argument("--az", metavar="PATH", help="the Azure CLI to time (default: az on PATH, if any)")
    parser.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    parser.add_argument("--child-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        CHILDREN[args.child](args.child_dir or Path.cwd())
        return 0
    if args.jobs < 1 or args.tasks < 1 or args.repeat < 1:
        parser.error("--jobs, --tasks and --repeat must be 1 or more")
    figures = Figures()
    local_stack = load_local_stack()
    try:
        measure(args, figures, local_stack)
    except (MeasureError, local_stack.LocalStackError) as error:
        report(args, figures)
        print(f"could not measure: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # the `with` blocks have stopped the stack, the proxies and any child
        print("interrupted", file=sys.stderr)
        return 130
    report(args, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
