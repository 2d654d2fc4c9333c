"""Apache Airflow provider for Runway: ``RunwayHook``, ``RunwayLoadOperator``,
``RunwayOutputSetSensor`` (deferrable through ``RunwayOutputSetTrigger``).

Needs the ``airflow`` extra: ``pip install 'runway-client[airflow]'``. Airflow finds
the provider (connection type ``runway``) through the ``apache_airflow_provider``
entry point. It uses only the public API of ``runway_client``. See docs/airflow.md.

The names load on first use, so Airflow can read ``provider.get_provider_info``
while it starts.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runway_client.airflow.hooks import RunwayHook
    from runway_client.airflow.operators import RunwayLoadOperator
    from runway_client.airflow.sensors import RunwayOutputSetSensor
    from runway_client.airflow.triggers import RunwayOutputSetTrigger

__all__ = ["RunwayHook", "RunwayLoadOperator", "RunwayOutputSetSensor", "RunwayOutputSetTrigger"]

_WHERE = {
    "RunwayHook": "hooks",
    "RunwayLoadOperator": "operators",
    "RunwayOutputSetSensor": "sensors",
    "RunwayOutputSetTrigger": "triggers",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        module = importlib.import_module(f"{__name__}.{_WHERE[name]}")
    except ImportError as exc:
        if exc.name is not None and exc.name.split(".")[0] == "airflow":
            raise ImportError(
                "runway_client.airflow needs Apache Airflow: pip install 'runway-client[airflow]'"
            ) from exc
        raise
    return getattr(module, name)
