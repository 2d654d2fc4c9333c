"""The Airflow names the wing uses: Airflow 3's task SDK, or Airflow 2.10's modules."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow.exceptions import AirflowException, AirflowSensorTimeout
    from airflow.sdk import BaseHook, BaseOperator, BaseSensorOperator, Context, PokeReturnValue
    from airflow.triggers.base import BaseTrigger, TriggerEvent
else:
    try:  # Airflow 3
        from airflow.sdk import BaseHook, BaseOperator, BaseSensorOperator, Context, PokeReturnValue
        from airflow.sdk.exceptions import AirflowException, AirflowSensorTimeout
    except ImportError:  # Airflow 2.10+
        from airflow.exceptions import AirflowException, AirflowSensorTimeout
        from airflow.hooks.base import BaseHook
        from airflow.models import BaseOperator
        from airflow.sensors.base import BaseSensorOperator, PokeReturnValue
        from airflow.utils.context import Context
    from airflow.triggers.base import BaseTrigger, TriggerEvent

__all__ = [
    "AirflowException",
    "AirflowSensorTimeout",
    "BaseHook",
    "BaseOperator",
    "BaseSensorOperator",
    "BaseTrigger",
    "Context",
    "PokeReturnValue",
    "TriggerEvent",
]
