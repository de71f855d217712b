"""Every Airflow name the package uses, in one place.

The rest of the package imports Airflow only through this module, so the differences
between the Airflow 3 releases it supports live here and nowhere else. Names are resolved
on first use (``from airflow_provider_rtcim.compat import BaseHook`` works as usual), so
importing the package stays as cheap as the names a module really touches.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# name -> the places it may live, newest Airflow first; the first that imports wins.
_WHERE: dict[str, tuple[str, ...]] = {
    "Asset": ("airflow.sdk",),
    "BaseHook": ("airflow.sdk",),
    "BaseOperator": ("airflow.sdk",),
    "BaseSensorOperator": ("airflow.sdk",),
    "Connection": ("airflow.sdk",),
    "Context": ("airflow.sdk",),
    "ObjectStoragePath": ("airflow.sdk",),
    "PokeReturnValue": ("airflow.sdk",),
    "conf": ("airflow.sdk",),
    "mask_secret": ("airflow.sdk.log",),
    "AirflowException": ("airflow.sdk.exceptions",),
    "AirflowFailException": ("airflow.sdk.exceptions",),
    "AirflowNotFoundException": ("airflow.sdk.exceptions",),
    "AirflowSensorTimeout": ("airflow.sdk.exceptions",),
    "AirflowSkipException": ("airflow.sdk.exceptions",),
    "AirflowTaskTimeout": ("airflow.sdk.exceptions",),
    "TaskDeferred": ("airflow.sdk.exceptions",),
    "BaseTrigger": ("airflow.triggers.base",),
    "TriggerEvent": ("airflow.triggers.base",),
    # OpenLineage (the [openlineage] extra): used only by operators/lineage.py, when reporting
    "OperatorLineage": ("airflow.providers.openlineage.extractors",),
    "InputDataset": ("airflow.providers.common.compat.openlineage.facet",),
    "OutputDataset": ("airflow.providers.common.compat.openlineage.facet",),
    "OutputStatisticsOutputDatasetFacet": ("airflow.providers.common.compat.openlineage.facet",),
}

__all__ = sorted(_WHERE)

if TYPE_CHECKING:
    pass


def __getattr__(name: str) -> Any:
    places = _WHERE.get(name)
    if places is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    error: Exception | None = None
    for place in places:
        try:
            value = getattr(importlib.import_module(place), name)
        except (ImportError, AttributeError) as exc:
            error = exc
            continue
        globals()[name] = value
        return value
    raise ImportError(f"{name} is in none of {', '.join(places)} on this Airflow") from error
