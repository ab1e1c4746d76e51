"""Lifecycle of the long-lived Flink jobs through the Flink REST API: deploy, status, savepoint, stop, restore.

The REST API is what an orchestrator uses anyway (PyFlink 2's JobClient savepoint calls are broken).
Every deployment is recorded under ``<HDP_HOME>/flink/deployments/<job>.json`` so that restore can find
the job's last checkpoint even after the JobManager itself restarted and forgot the job.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import ssl
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hybrid_platform import names
from hybrid_platform.config import REPO_ROOT, PlatformConfig

#: The long-lived jobs: name -> script submitted with `flink run -py`.
JOBS: dict[str, Path] = {
    names.JOB_FRAUD_SCORING: REPO_ROOT / "flink_jobs" / "fraud_scoring.py",
    names.JOB_LAKE_INGEST: REPO_ROOT / "flink_jobs" / "lake_ingest.py",
}
log = logging.getLogger(__name__)
ACTIVE_STATES = {"RUNNING", "CREATED", "INITIALIZING", "RESTARTING", "RECONCILING"}
#: The options each job's ``main`` accepts (held in step with its argparse by a unit test): option -> its
#: type (``int``, ``float``, ``str``) or its choices. What the DAG's ``job_args`` param and every deploy
#: check before anything is stopped: a typo must not leave a job stopped after an upgrade's savepoint.
JOB_OPTIONS: dict[str, dict[str, type | tuple[str, ...]]] = {
    names.JOB_FRAUD_SCORING: {
        "--alert-threshold": float,
        "--checkpoint-interval-ms": int,
        "--model-registry": str,
        "--start-from": ("group-offsets", "latest-offset"),
    },
    names.JOB_LAKE_INGEST: {
        "--checkpoint-interval-ms": int,
        "--start-from": ("group-offsets", "latest-offset"),
    },
}


def check_job_args(job: str, args: list[str]) -> None:
    """Raise :class:`FlinkOpsError` (one line) unless ``args`` are ``--option value`` pairs ``job`` accepts."""
    _check_job(job)
    known = JOB_OPTIONS[job]
    pairs = [a.split("=", 1) if a.startswith("--") and "=" in a else [a] for a in args]
    flat = [part for pair in pairs for part in pair]
    if len(flat) % 2:
        raise FlinkOpsError(f"{job}: job arguments come in `--option value` pairs, got {args}")
    for option, value in zip(flat[::2], flat[1::2], strict=True):
        kind = known.get(option)
        if kind is None:
            raise FlinkOpsError(f"{job}: unknown option {option!r}; it takes {', '.join(known)}")
        if isinstance(kind, tuple):
            if value not in kind:
                raise FlinkOpsError(f"{job}: {option} takes one of {', '.join(kind)}, not {value!r}")
            continue
        try:
            kind(value)
        except ValueError:
            raise FlinkOpsError(f"{job}: {option} takes {kind.__name__}, not {value!r}") from None


class FlinkOpsError(RuntimeError):
    """A lifecycle operation failed; the message says what happened and what to do."""


class AlreadyRunning(FlinkOpsError):
    """A restore was asked for a job that runs (another actor may have just started it)."""


@dataclass(frozen=True)
class JobInfo:
    job_id: str
    name: str
    state: str
    start_time: int
    tasks_total: int = 0
    tasks_running: int = 0  # a RUNNING job may still wait for slots: its tasks are SCHEDULED, not RUNNING

    @property
    def all_tasks_running(self) -> bool:
        return self.state == "RUNNING" and 0 < self.tasks_total == self.tasks_running


def _tls_context(cfg: PlatformConfig) -> ssl.SSLContext | None:
    """The client certificate a Flink REST API with mutual TLS requires (HDP_FLINK_REST_TLS_DIR), or None."""
    if not cfg.flink_rest_tls_dir:
        return None
    folder = Path(cfg.flink_rest_tls_dir)
    context = ssl.create_default_context(cafile=str(folder / "ca.crt"))
    context.load_cert_chain(str(folder / "tls.crt"), str(folder / "tls.key"))
    return context


def request(cfg: PlatformConfig, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        f"{cfg.flink_rest_url}{path}", data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10, context=_tls_context(cfg)) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        raise FlinkOpsError(f"Flink REST {method} {path} -> {error.code}: {error.read()[:300]!r}") from None
    except (urllib.error.URLError, OSError) as error:
        raise FlinkOpsError(f"Flink REST API not reachable at {cfg.flink_rest_url} ({error}); run `hdp up`") from None


def _check_job(job: str) -> None:
    if job not in JOBS:
        raise FlinkOpsError(f"unknown job {job!r}; choose one of: {', '.join(JOBS)}")


def jobs(cfg: PlatformConfig) -> list[JobInfo]:
    overview = request(cfg, "GET", "/jobs/overview")
    found = [
        JobInfo(
            j["jid"],
            j["name"],
            j["state"],
            j.get("start-time", 0),
            int((j.get("tasks") or {}).get("total", 0)),
            int((j.get("tasks") or {}).get("running", 0)),
        )
        for j in overview.get("jobs", [])
    ]
    return sorted(found, key=lambda j: j.start_time, reverse=True)


def active_job(cfg: PlatformConfig, job: str) -> JobInfo | None:
    return next((j for j in jobs(cfg) if j.name == job and j.state in ACTIVE_STATES), None)


def active_copies(cfg: PlatformConfig, job: str) -> list[JobInfo]:
    """Every active run of ``job``, oldest first (more than one is a fault: see :func:`resolve_duplicates`)."""
    return sorted((j for j in jobs(cfg) if j.name == job and j.state in ACTIVE_STATES), key=lambda j: j.start_time)


def resolve_duplicates(cfg: PlatformConfig, job: str) -> list[str]:
    """Cancel every active copy of ``job`` but the oldest; returns the cancelled job ids.

    The lock keeps platform paths from starting a second copy; this catches one that slipped past it (a
    submission from outside the platform, a lease that expired under a stalled holder). The oldest copy is
    kept: it holds the transactions and offsets the newer one started from.
    """
    copies = active_copies(cfg, job)
    cancelled = []
    for extra in copies[1:]:
        log.warning("%s: a second copy %s runs beside %s; cancelling it", job, extra.job_id, copies[0].job_id)
        request(cfg, "PATCH", f"/jobs/{extra.job_id}?mode=cancel")
        cancelled.append(extra.job_id)
    return cancelled


def latest_job(cfg: PlatformConfig, job: str) -> JobInfo | None:
    """The active run of ``job`` if there is one, else its newest run the JobManager still knows (any state)."""
    runs = [j for j in jobs(cfg) if j.name == job]
    return next((j for j in runs if j.state in ACTIVE_STATES), runs[0] if runs else None)


def checkpoints(cfg: PlatformConfig, job_id: str) -> dict[str, Any]:
    """Flink's checkpoint statistics of one run: ``counts`` and ``latest`` (``completed``, ``restored``...)."""
    stats: dict[str, Any] = request(cfg, "GET", f"/jobs/{job_id}/checkpoints")
    return stats


def checkpoint_interval_ms(cfg: PlatformConfig, job_id: str) -> int | None:
    """The run's checkpoint interval (None: checkpointing is off)."""
    try:
        config: dict[str, Any] = request(cfg, "GET", f"/jobs/{job_id}/checkpoints/config")
    except FlinkOpsError:  # 404 when the job does not checkpoint
        return None
    interval = int(config.get("interval", 0))
    return interval if 0 < interval < 2**62 else None  # Long.MAX_VALUE also means "off"


def _deployments_dir(cfg: PlatformConfig) -> Path:
    return cfg.home / "flink" / "deployments"


def _record_deployment(
    cfg: PlatformConfig,
    job: str,
    job_id: str,
    restored_from: str | None,
    args: list[str] | None = None,
    claimed: str | None = None,
) -> None:
    folder = _deployments_dir(cfg)
    folder.mkdir(parents=True, exist_ok=True)
    record = folder / f"{job}.json"
    history = json.loads(record.read_text()) if record.exists() else []
    history.append(
        {
            "job_id": job_id,
            "deployed_at": int(time.time() * 1000),
            "restored_from": restored_from,
            "claimed_copy": claimed,
            "args": list(args or []),
        }
    )
    record.write_text(json.dumps(history[-20:], indent=1))


def deployments(cfg: PlatformConfig, job: str) -> list[dict[str, Any]]:
    record = _deployments_dir(cfg) / f"{job}.json"
    return json.loads(record.read_text()) if record.exists() else []


def last_args(cfg: PlatformConfig, job: str) -> list[str]:
    """The job arguments of the last recorded deployment (a restart keeps what was deployed)."""
    history = deployments(cfg, job)
    return [str(a) for a in history[-1].get("args", [])] if history else []


def deploy(
    cfg: PlatformConfig, job: str, args: list[str] | None = None, restore_from: str | None = None
) -> tuple[JobInfo, bool]:
    """Ensure ``job`` runs; submit it (from ``restore_from`` if given) only when absent. Returns (job, submitted).

    Serialized per job across every actor by :mod:`job_lock`: at most one copy of a job, whoever asks.
    """
    from hybrid_platform import job_lock, runtime

    _check_job(job)
    check_job_args(job, args or [])
    with job_lock.held(cfg, job):
        resolve_duplicates(cfg, job)
        running = active_job(cfg, job)
        if running is not None:
            return running, False
        # The Kafka source fails (and restarts forever) on a topic that does not exist yet: create them first,
        # where this process may (locally; on a cluster the setup Job did, and Airflow holds no admin password).
        from hybrid_platform import generator, kafka_admin

        if kafka_admin.admin_available(cfg):
            generator.ensure_topics(cfg, names.ALL_TOPICS)
        # Checked again immediately before submitting (the topic check takes a moment).
        running = active_job(cfg, job)
        if running is not None:
            return running, False
        source = claimable_copy(cfg, restore_from) if restore_from and is_savepoint(restore_from) else restore_from
        restore_options = ["-s", source] if source else []
        result = runtime.flink_run(cfg, JOBS[job], args or [], detached=True, extra_options=restore_options)
        job_id = job_id_from_output(result.stdout + result.stderr)
        _record_deployment(cfg, job, job_id, restore_from, args, claimed=source if source != restore_from else None)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if job_id in resolve_duplicates(cfg, job):  # an older copy appeared after all: it stays
                kept = active_job(cfg, job)
                if kept is not None:
                    return kept, False
            info = next((j for j in jobs(cfg) if j.job_id == job_id), None)
            # Deployed = every task running: a savepoint or stop right after needs all of them (a RUNNING job's
            # tasks may still be deploying).
            if info and info.all_tasks_running:
                return info, True
            if info and info.state in {"FAILED", "CANCELED", "FINISHED"}:
                raise FlinkOpsError(
                    f"{job} ({job_id}) went to {info.state} after submission: {root_cause(cfg, job_id)}"
                )
            time.sleep(0.5)
        raise FlinkOpsError(
            f"{job} ({job_id}) was submitted but its tasks are not all running after 60 s: {root_cause(cfg, job_id)}"
        )


def root_cause(cfg: PlatformConfig, job_id: str) -> str:
    """The innermost cause of the job's latest failure, in one line (what a user needs to act on)."""
    try:
        history = request(cfg, "GET", f"/jobs/{job_id}/exceptions")["exceptionHistory"]["entries"]
    except (FlinkOpsError, KeyError, TypeError):
        return "no failure recorded"
    if not history:
        return "no failure recorded"
    causes = [line for line in history[0]["stacktrace"].splitlines() if line.startswith("Caused by: ")]
    return str(causes[-1] if causes else history[0]["exceptionName"]).removeprefix("Caused by: ")[:300]


def job_id_from_output(output: str) -> str:
    for line in output.splitlines():
        if "JobID" in line:
            return line.rsplit(" ", 1)[-1].strip()
    raise FlinkOpsError(f"could not find the JobID in the `flink run` output: {output[-300:]}")


def _wait_for_trigger(cfg: PlatformConfig, path: str, timeout_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = request(cfg, "GET", path)
        if status["status"]["id"] == "COMPLETED":
            operation: dict[str, Any] = status.get("operation", {})
            if "failure-cause" in operation:
                cause = operation["failure-cause"].get("stack-trace", "")
                raise FlinkOpsError(f"savepoint failed: {cause.splitlines()[0] if cause else operation}")
            return operation
        time.sleep(0.5)
    raise FlinkOpsError(f"savepoint did not complete within {timeout_s:.0f} s")


def savepoint(cfg: PlatformConfig, job: str, timeout_s: float = 120) -> str:
    """Trigger a savepoint of the running ``job`` and return its location."""
    info = _require_active(cfg, job)
    target = (cfg.home / "flink" / "savepoints").as_uri()
    trigger = request(cfg, "POST", f"/jobs/{info.job_id}/savepoints", {"target-directory": target, "cancel-job": False})
    operation = _wait_for_trigger(cfg, f"/jobs/{info.job_id}/savepoints/{trigger['request-id']}", timeout_s)
    return str(operation["location"])


def stop(cfg: PlatformConfig, job: str, timeout_s: float = 120) -> str:
    """Stop ``job`` with a savepoint (no drain: event time does not jump to the end) and return its location."""
    return stop_job_id(cfg, _require_active(cfg, job).job_id, timeout_s)


def stop_job_id(cfg: PlatformConfig, job_id: str, timeout_s: float = 120) -> str:
    """Stop the job ``job_id`` with a savepoint and return its location.

    Unlike a cancel, the savepoint commits the exactly-once Kafka sinks' open transactions. A cancelled (or
    killed) job leaves its open transaction on the topic, and read-committed consumers read nothing past it
    until a job with the same transactional-id prefix fences it or it times out (10 min).
    """
    target = (cfg.home / "flink" / "savepoints").as_uri()
    trigger = request(cfg, "POST", f"/jobs/{job_id}/stop", {"targetDirectory": target, "drain": False})
    operation = _wait_for_trigger(cfg, f"/jobs/{job_id}/savepoints/{trigger['request-id']}", timeout_s)
    return str(operation["location"])


def cancel(cfg: PlatformConfig, job: str) -> bool:
    """Cancel ``job`` without a savepoint (its retained checkpoints stay); False when it was not running."""
    _check_job(job)
    info = active_job(cfg, job)
    if info is None:
        return False
    request(cfg, "PATCH", f"/jobs/{info.job_id}?mode=cancel")
    return True


def _require_active(cfg: PlatformConfig, job: str) -> JobInfo:
    _check_job(job)
    info = active_job(cfg, job)
    if info is None:
        raise FlinkOpsError(f"{job} is not running; start it with `hdp flink deploy {job}`")
    return info


def latest_checkpoint(cfg: PlatformConfig, job: str) -> str | None:
    """The newest retained checkpoint of any earlier run of ``job`` (from the REST API, else from disk)."""
    candidates: list[tuple[int, str]] = []
    for run in deployments(cfg, job):
        try:
            stats = request(cfg, "GET", f"/jobs/{run['job_id']}/checkpoints")
            completed = (stats.get("latest") or {}).get("completed") or {}
            path = completed.get("external_path")
            if path and _restorable(path):
                candidates.append((int(completed["latest_ack_timestamp"]), path))
                continue
        except FlinkOpsError:
            pass  # the JobManager restarted and forgot the job: look on disk
        folder = cfg.home / "flink" / "checkpoints" / run["job_id"]
        for metadata in folder.glob("chk-*/_metadata"):
            candidates.append((int(metadata.stat().st_mtime * 1000), _flink_uri(metadata.parent)))
    return max(candidates)[1] if candidates else None


def _flink_uri(path: Path) -> str:
    """A local path as Flink writes it in its REST answers (``file:/...``), so locations compare equal."""
    return f"file:{path}"


def local_path(uri: str) -> Path:
    return Path("/" + uri.removeprefix("file:").lstrip("/"))


def _restorable(uri: str) -> bool:
    """A local checkpoint/savepoint still on disk (retention deletes older ones); remote URIs are trusted."""
    if not uri.startswith("file:"):
        return True
    return (local_path(uri) / "_metadata").exists()


def _age_key(uri: str) -> float:
    return local_path(uri).stat().st_mtime if uri.startswith("file:") else 0.0


def is_savepoint(uri: str) -> bool:
    """Flink names every savepoint folder ``savepoint-<job id prefix>-<random>``; checkpoints are ``chk-<n>``."""
    return uri.rstrip("/").rsplit("/", 1)[-1].startswith("savepoint-")


def claimable_copy(cfg: PlatformConfig, uri: str) -> str:
    """A copy of the savepoint ``uri`` for a run to claim, so the savepoint itself survives the restore.

    A job that restores in CLAIM mode (the changelog state backend needs it) owns the snapshot it started
    from and deletes it once newer checkpoints subsume it, about a second later. Savepoints are self-contained
    and relocatable, so the run claims a copy. A retained checkpoint is not copied: restoring from one hands
    it to the new run, which is what a checkpoint is for; a restore point to keep is a savepoint.
    """
    name = uri.rstrip("/").rsplit("/", 1)[-1]
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    if uri.startswith("file:"):
        target = cfg.home / "flink" / "claimed" / f"{name}-{stamp}-{os.getpid()}"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(local_path(uri), target)
        return _flink_uri(target)
    from pyarrow import fs  # type: ignore[import-untyped]

    filesystem, path = fs.FileSystem.from_uri(uri)
    if cfg.catalog.s3_endpoint and uri.startswith(("s3://", "s3a://")):
        filesystem = fs.S3FileSystem(
            endpoint_override=cfg.catalog.s3_endpoint,
            region=cfg.catalog.s3_region or None,
            force_virtual_addressing=False,
        )
    parent = path.rstrip("/").rsplit("/", 1)[0]
    target_path = f"{parent.rsplit('/', 1)[0]}/claimed/{name}-{stamp}-{os.getpid()}"
    fs.copy_files(path, target_path, source_filesystem=filesystem, destination_filesystem=filesystem)
    scheme = uri.split("://", 1)[0]
    return f"{scheme}://{target_path}"


def local_savepoints(cfg: PlatformConfig, job: str) -> list[Path]:
    """``job``'s complete savepoints under ``<HDP_HOME>/flink/savepoints``, newest first (Flink names each
    ``savepoint-<first 6 characters of the job id>-<random>``; the ids come from the deployment record)."""
    ids = {run["job_id"][:6] for run in deployments(cfg, job)}
    found = [
        p
        for p in (cfg.home / "flink" / "savepoints").glob("savepoint-*")
        if p.name.split("-")[1] in ids and (p / "_metadata").exists()
    ]
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


def state_dirs(cfg: PlatformConfig) -> tuple[str, str]:
    """Where the session cluster keeps checkpoints and savepoints (URIs): the local runtime's folders, or, on a
    cluster (object storage), what its JobManager is configured with (raises FlinkOpsError if it cannot say)."""
    if cfg.environment != "cluster" and not cfg.catalog.on_object_storage:
        base = cfg.home / "flink"
        return (base / "checkpoints").as_uri(), (base / "savepoints").as_uri()
    entries = request(cfg, "GET", "/jobmanager/config")
    conf = {entry["key"]: entry["value"] for entry in entries}
    checkpoints = conf.get("execution.checkpointing.dir") or conf.get("state.checkpoints.dir")
    savepoints = conf.get("execution.checkpointing.savepoint-dir") or conf.get("state.savepoints.dir")
    if not checkpoints or not savepoints:
        raise FlinkOpsError("the JobManager names no checkpoint or savepoint directory")
    return checkpoints, savepoints


def _filesystem(cfg: PlatformConfig, uri: str) -> tuple[Any, str]:
    """A pyarrow file system for ``uri`` (``file:`` or ``s3://``, with the platform's S3 endpoint) and the path."""
    from pyarrow import fs

    if uri.startswith(("s3://", "s3a://")):
        bucket_path = uri.split("://", 1)[1]
        return (
            fs.S3FileSystem(
                endpoint_override=cfg.catalog.s3_endpoint or None,
                region=cfg.catalog.s3_region or None,
                force_virtual_addressing=False,
            ),
            bucket_path.rstrip("/"),
        )
    return fs.LocalFileSystem(), str(local_path(uri)).rstrip("/")


def oldest_restore_point_ms(cfg: PlatformConfig, job: str) -> int | None:
    """When the oldest retained checkpoint or savepoint of ``job`` was taken (epoch ms), or None if it has none;
    on local disk or object storage alike. Raises FlinkOpsError (or OSError) when they cannot be listed.

    A restore from it commits the files its sinks had written before it, so table maintenance must not delete
    them as orphans (see :func:`orphan_min_age_hours`).
    """
    from pyarrow import fs

    checkpoints, savepoints = state_dirs(cfg)
    ids = [run["job_id"] for run in deployments(cfg, job)]
    times: list[int] = []

    def metadata_times(uri: str, folder_prefixes: tuple[str, ...]) -> None:
        filesystem, base = _filesystem(cfg, uri)
        try:
            folders = filesystem.get_file_info(fs.FileSelector(base, allow_not_found=True))
        except FileNotFoundError:
            return
        wanted = [
            f.path for f in folders if f.type == fs.FileType.Directory and f.base_name.startswith(folder_prefixes)
        ]
        for info in filesystem.get_file_info([f"{folder}/_metadata" for folder in wanted]):
            if info.type == fs.FileType.File and info.mtime is not None:
                times.append(int(info.mtime.timestamp() * 1000))

    for job_id in ids:
        metadata_times(f"{checkpoints.rstrip('/')}/{job_id}", ("chk-",))
    if ids:
        metadata_times(savepoints, tuple(f"savepoint-{job_id[:6]}-" for job_id in ids))
    return min(times) if times else None


#: What orphan cleanup waits for when a job's restore points cannot be listed: in effect, it removes nothing.
UNKNOWN_RESTORE_POINTS_HOURS = 24.0 * 365 * 100


def orphan_min_age_hours(cfg: PlatformConfig, job: str, configured_hours: float, now_ms: int) -> float:
    """The orphan-file age for tables ``job`` writes: the configured one, or more when a restore point of the
    job is older, plus an hour (the files a checkpoint commits were written before it was taken). When the
    restore points cannot be listed (a cluster's JobManager or object store unreachable), nothing is old
    enough: a file is deleted only when it is proven not to be needed."""
    try:
        oldest = oldest_restore_point_ms(cfg, job)
    except (FlinkOpsError, OSError):
        return UNKNOWN_RESTORE_POINTS_HOURS
    if oldest is None:
        return configured_hours
    return max(configured_hours, (now_ms - oldest) / 3_600_000 + 1.0)


def latest_savepoint(cfg: PlatformConfig, job: str) -> str | None:
    found = local_savepoints(cfg, job)
    return _flink_uri(found[0]) if found else None


def flink_uri(path: Path) -> str:
    """A local path as Flink names it (``file:/...``)."""
    return _flink_uri(path)


def overview(cfg: PlatformConfig) -> dict[str, Any]:
    """The cluster overview: ``taskmanagers``, ``slots-total``, ``slots-available``, ``jobs-running``..."""
    found: dict[str, Any] = request(cfg, "GET", "/overview")
    return found


def newest_restore_point(cfg: PlatformConfig, job: str) -> str | None:
    """The newer of ``job``'s latest retained checkpoint and latest savepoint, or None when it has neither."""
    options = [p for p in (latest_checkpoint(cfg, job), latest_savepoint(cfg, job)) if p]
    return max(options, key=_age_key) if options else None


def restore(
    cfg: PlatformConfig, job: str, from_path: str | None = None, args: list[str] | None = None
) -> tuple[JobInfo, str]:
    """Start ``job`` from ``from_path``, else from the newest of its latest checkpoint and savepoint."""
    from hybrid_platform import job_lock

    _check_job(job)
    with job_lock.held(cfg, job):
        if active_job(cfg, job) is not None:
            raise AlreadyRunning(f"{job} is already running; `hdp flink stop {job}` first")
        if from_path is None:
            from_path = newest_restore_point(cfg, job)
            if from_path is None:
                raise FlinkOpsError(
                    f"no checkpoint or savepoint of {job} found; deploy it fresh with `hdp flink deploy {job}`"
                )
        info, submitted = deploy(cfg, job, args=args, restore_from=from_path)
        if not submitted:
            raise AlreadyRunning(f"{job} is already running ({info.job_id}); `hdp flink stop {job}` first")
        return info, from_path


def status(cfg: PlatformConfig) -> list[dict[str, Any]]:
    """State, uptime and last checkpoint of each long-lived job."""
    report = []
    for job in JOBS:
        info = active_job(cfg, job)
        entry: dict[str, Any] = {"job": job, "state": info.state if info else "NOT RUNNING"}
        if info:
            entry["job_id"] = info.job_id
            entry["uptime_s"] = round(time.time() - info.start_time / 1000)
            stats = request(cfg, "GET", f"/jobs/{info.job_id}/checkpoints")
            completed = (stats.get("latest") or {}).get("completed") or {}
            entry["checkpoints_completed"] = stats.get("counts", {}).get("completed", 0)
            if completed:
                entry["last_checkpoint_age_s"] = round(time.time() - completed["latest_ack_timestamp"] / 1000, 1)
                entry["last_checkpoint"] = completed.get("external_path")
        report.append(entry)
    return report
