"""``RunwayLoadOperator``: load files into Runway from a task, once, however often it is retried."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from msgspec.structs import replace

from runway_client import (
    LoadReceipt,
    NotFoundError,
    PendingJob,
    RunwayClient,
    RunwayError,
    UploadExpiredError,
)
from runway_client.airflow._airflow import BaseOperator, Context
from runway_client.airflow.hooks import RunwayHook
from runway_client.airflow.pending import PendingStore, TaskKey

__all__ = ["RunwayLoadOperator"]

DEFAULT_WAIT_SECONDS = 3600.0
CLOCK_SKEW_SECONDS = 120.0


class RunwayLoadOperator(BaseOperator):
    """Create a Runway job for ``input_files``, upload them, start it; return the receipt.

    Args (the first five are templated, as in ``RunwayClient.load_files``):
        tenant_code, bundle_name, input_files (file key -> local path),
        bundle_params, school_year (``"2526"``, ``"2025-2026"``, ``"2026"``...).
        runway_conn_id: the ``runway`` connection (default ``runway_default``).
        wait_for_outputs: ``True`` waits up to an hour for the run's output set, a
            number waits that many seconds (holding the worker: for long runs use
            ``RunwayOutputSetSensor(deferrable=True)`` instead).
        download_to: a folder (templated): wait, then download the output set there.
        poll_interval: seconds between looks at the output sets while waiting.
        state_dir: where jobs are kept between tries (``PendingStore``'s default:
            ``RUNWAY_AIRFLOW_STATE_DIR`` or ``$AIRFLOW_HOME/runway_client``).

    Returns (to XCom): ``LoadReceipt.to_dict()``: ``jobUid``, ``files`` (bytes,
    sha256), ``createdAt``, ``startedAt`` ... and ``outputSet`` / ``downloads`` when
    it waited.

    Idempotent across Airflow retries: the job is saved (``PendingStore``, keyed by
    dag id, task id, run id and map index) the moment Runway creates it, again after
    the uploads and when it is started. A later try of the same task instance
    resumes a saved job (uploads what is missing, starts it) or, if it was started,
    returns its receipt: it never creates a second job. ``on_kill`` (Airflow's
    SIGTERM) saves the job too. Only a job that can never be finished (its upload
    URLs expired, or Runway no longer knows it) is dropped, so that the next try
    makes a new one.

    Mapping: ``RunwayLoadOperator.partial(task_id=..., tenant_code=..., ...)
    .expand(input_files=[{...}, {...}])`` loads each mapping as its own task.
    """

    template_fields = (
        "tenant_code",
        "bundle_name",
        "input_files",
        "bundle_params",
        "school_year",
        "download_to",
    )
    ui_color = "#d7ecf5"

    def __init__(
        self,
        *,
        tenant_code: str,
        bundle_name: str,
        input_files: Mapping[str, str],
        school_year: str | int,
        bundle_params: Mapping[str, str] | None = None,
        runway_conn_id: str = RunwayHook.default_conn_name,
        wait_for_outputs: bool | float = False,
        download_to: str | None = None,
        poll_interval: float = 15.0,
        state_dir: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.tenant_code = tenant_code
        self.bundle_name = bundle_name
        self.input_files = input_files
        self.bundle_params = bundle_params
        self.school_year = school_year
        self.runway_conn_id = runway_conn_id
        self.wait_for_outputs = wait_for_outputs
        self.download_to = download_to
        self.poll_interval = poll_interval
        self.state_dir = state_dir
        self._store: PendingStore | None = None
        self._key: TaskKey | None = None
        self._pending: PendingJob | None = None

    def execute(self, context: Context) -> dict[str, object]:
        ti = context["ti"]
        key = TaskKey(ti.dag_id, ti.task_id, ti.run_id, int(getattr(ti, "map_index", -1)))
        store = PendingStore(self.state_dir)
        self._store, self._key = store, key
        client = RunwayHook(self.runway_conn_id).get_conn()
        saved = store.get(key)
        if saved is not None and saved.receipt is not None:
            self.log.info("job %s was started by an earlier try", saved.receipt.job_uid)
            receipt = saved.receipt
        elif saved is not None and saved.pending is not None:
            self.log.info("resuming job %s, created by an earlier try", saved.pending.job.uid)
            receipt = self._resume(client, store, key, saved.pending)
        else:
            receipt = self._load(client, store, key)
        if self.wait_for_outputs is not False or self.download_to is not None:
            receipt = self._follow(client, receipt)
        return receipt.to_dict()

    def _load(self, client: RunwayClient, store: PendingStore, key: TaskKey) -> LoadReceipt:
        job = client.request_runway_job(
            tenant_code=self.tenant_code,
            bundle_name=self.bundle_name,
            input_files=dict(self.input_files),
            bundle_params=self.bundle_params,
            school_year=self.school_year,
        )
        self.log.info("created job %s", job.job.uid)
        self._keep(store, key, PendingJob(job=job.job))
        try:
            sent = client.upload_to_s3(job, dict(self.input_files))
            self._keep(store, key, PendingJob(job=job.job, receipts=sent))
            receipt = client.start_job(job)
        except RunwayError as error:
            self._after_failure(store, key, error)
            raise
        self._pending = None
        store.save_started(key, receipt)
        self.log.info("started job %s", receipt.job_uid)
        return receipt

    def _resume(
        self, client: RunwayClient, store: PendingStore, key: TaskKey, pending: PendingJob
    ) -> LoadReceipt:
        self._pending = pending
        try:
            receipt = client.resume(pending)
        except RunwayError as error:
            self._after_failure(store, key, error)
            raise
        self._pending = None
        store.save_started(key, receipt)
        self.log.info("started job %s", receipt.job_uid)
        return receipt

    def _keep(self, store: PendingStore, key: TaskKey, pending: PendingJob) -> None:
        self._pending = pending
        store.save_pending(key, pending)

    def _after_failure(self, store: PendingStore, key: TaskKey, error: RunwayError) -> None:
        if error.pending is not None:
            self._keep(store, key, error.pending)
        elif isinstance(error, UploadExpiredError | NotFoundError):
            self.log.warning(
                "job %s can never be finished; the next try makes a new one", error.job_uid
            )
            self._pending = None
            store.forget(key)

    def _follow(self, client: RunwayClient, receipt: LoadReceipt) -> LoadReceipt:
        timeout = (
            DEFAULT_WAIT_SECONDS
            if self.wait_for_outputs is True or self.wait_for_outputs is False
            else float(self.wait_for_outputs)
        )
        found = client.wait_for_outputs(
            receipt.job_uid,
            timeout=timeout,
            poll_interval=self.poll_interval,
            created_after=receipt.created_at - timedelta(seconds=CLOCK_SKEW_SECONDS),
        )
        receipt = replace(receipt, output_set=found)
        if self.download_to is not None:
            downloads = client.download(found, os.fspath(self.download_to))
            receipt = replace(receipt, downloads=downloads)
        return receipt

    def on_kill(self) -> None:
        """Airflow's SIGTERM: keep the job for the next try (it is usually saved already)."""
        if self._store is not None and self._key is not None and self._pending is not None:
            self._store.save_pending(self._key, self._pending)
