"""``RunwayOutputSetSensor``: wait for the output set of a job's run."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from runway_client.airflow._airflow import (
    AirflowException,
    AirflowSensorTimeout,
    BaseSensorOperator,
    Context,
    PokeReturnValue,
)
from runway_client.airflow.hooks import RunwayHook
from runway_client.airflow.triggers import RunwayOutputSetTrigger, look_once, not_ready_message

__all__ = ["RunwayOutputSetSensor"]


class RunwayOutputSetSensor(BaseSensorOperator):
    """Succeeds when the run of ``job_uid`` has produced its output set; returns it
    (to XCom) as plain builtins (``uid``, ``files``, ``sentToOds``, ``createdAt`` ...).

    Runway has no job-status endpoint: a successful run shows only as an output set,
    and a failed run never makes one (CONTRACT.md, "Output sets"). So on
    ``timeout`` (seconds) the task fails with ``AirflowSensorTimeout`` saying the run
    may still be running or may have failed.

    Args:
        job_uid: the job (templated), e.g.
            ``"{{ ti.xcom_pull(task_ids='load')['jobUid'] }}"``.
        runway_conn_id: the ``runway`` connection.
        deferrable: wait in Airflow's triggerer (``RunwayOutputSetTrigger``), freeing
            the worker slot; otherwise poke every ``poke_interval`` seconds
            (``mode="reschedule"`` frees the slot between pokes).
        poke_interval, timeout, mode, ...: as for every Airflow sensor.
    """

    template_fields = ("job_uid",)
    ui_color = "#d7ecf5"

    def __init__(
        self,
        *,
        job_uid: str,
        runway_conn_id: str = RunwayHook.default_conn_name,
        deferrable: bool = False,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("poke_interval", 60.0)
        kwargs.setdefault("timeout", 3600.0)
        super().__init__(**kwargs)
        self.job_uid = job_uid
        self.runway_conn_id = runway_conn_id
        self.deferrable = deferrable

    def execute(self, context: Context) -> Any:
        if self.deferrable:
            self.defer(
                trigger=RunwayOutputSetTrigger(
                    job_uid=self.job_uid,
                    runway_conn_id=self.runway_conn_id,
                    poll_interval=float(self.poke_interval),
                    deadline=time.time() + float(self.timeout),
                ),
                method_name="execute_complete",
                timeout=timedelta(seconds=float(self.timeout) + 300),
            )
        try:
            return super().execute(context)
        except AirflowSensorTimeout:
            raise AirflowSensorTimeout(
                not_ready_message(self.job_uid, float(self.timeout))
            ) from None

    def poke(self, context: Context) -> PokeReturnValue | bool:
        outcome = look_once(RunwayHook(self.runway_conn_id).get_conn(), self.job_uid)
        if outcome is None:
            return False
        if outcome["status"] == "error":
            raise AirflowException(outcome["message"])
        return PokeReturnValue(is_done=True, xcom_value=outcome["outputSet"])

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        """Where a deferred wait ends: the output set, or the trigger's error."""
        if event.get("status") == "found":
            return event["outputSet"]
        if event.get("status") == "timeout":
            raise AirflowSensorTimeout(event["message"])
        raise AirflowException(event.get("message", f"unexpected trigger event {event!r}"))
