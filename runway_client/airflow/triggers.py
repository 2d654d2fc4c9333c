"""``RunwayOutputSetTrigger``: waits for a job's output set in Airflow's triggerer."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import msgspec

from runway_client import OutputsNotReadyError, RunwayClient, RunwayError
from runway_client.airflow._airflow import BaseTrigger, TriggerEvent
from runway_client.airflow.hooks import RunwayHook

__all__ = ["RunwayOutputSetTrigger", "look_once", "not_ready_message"]


def look_once(client: RunwayClient, job_uid: str) -> dict[str, Any] | None:
    """One look at the output sets: ``{"status": "found", "outputSet": {...}}``,
    ``{"status": "error", "message": ...}``, or ``None`` (not there yet)."""
    try:
        found = client.wait_for_outputs(job_uid, timeout=0, poll_interval=1)
    except OutputsNotReadyError:
        return None
    except RunwayError as error:
        return {"status": "error", "message": str(error), "kind": type(error).__name__}
    return {"status": "found", "outputSet": msgspec.to_builtins(found)}


def not_ready_message(job_uid: str, seconds: float) -> str:
    """What a sensor that timed out says (CONTRACT.md, "Output sets")."""
    return (
        f"no output set for job {job_uid} after {seconds:g} s: the run may still be running, "
        "or may have failed (failed runs produce no output set). See the job in the Runway UI"
    )


class RunwayOutputSetTrigger(BaseTrigger):
    """Polls ``GET /output-sets`` every ``poll_interval`` seconds until the output set of
    ``job_uid`` appears or ``deadline`` (seconds since the epoch) passes, without
    holding a worker slot. The listing runs in a thread (the client is synchronous).

    Events: ``{"status": "found", "outputSet": {...}}``, ``{"status": "timeout",
    "message": ...}``, ``{"status": "error", "message": ...}``.
    """

    def __init__(
        self, *, job_uid: str, runway_conn_id: str, poll_interval: float, deadline: float
    ) -> None:
        super().__init__()
        self.job_uid = job_uid
        self.runway_conn_id = runway_conn_id
        self.poll_interval = poll_interval
        self.deadline = deadline

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "job_uid": self.job_uid,
                "runway_conn_id": self.runway_conn_id,
                "poll_interval": self.poll_interval,
                "deadline": self.deadline,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        client: RunwayClient | None = None
        started = time.time()
        while True:
            if client is None:
                client = await asyncio.to_thread(RunwayHook(self.runway_conn_id).get_conn)
            outcome = await asyncio.to_thread(look_once, client, self.job_uid)
            if outcome is not None:
                yield TriggerEvent(outcome)
                return
            remaining = self.deadline - time.time()
            if remaining <= 0:
                waited = max(0.0, time.time() - started)
                yield TriggerEvent(
                    {"status": "timeout", "message": not_ready_message(self.job_uid, waited)}
                )
                return
            await asyncio.sleep(min(self.poll_interval, remaining))
