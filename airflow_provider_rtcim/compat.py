"""Every Airflow name the package uses, and every difference between the Airflow 3 releases.

The rest of the package imports Airflow only through this module, so the differences
between the Airflow 3 releases it supports (3.0, 3.1, 3.2, 3.3) live here and nowhere else.
Names are resolved on first use (``from airflow_provider_rtcim.compat import BaseHook``
works as usual) from a list of places, newest Airflow first, so importing the package stays
as cheap as the names a module really touches. Behaviour that differs is behind the small
functions below, each of which detects the feature rather than the version:

* :func:`get_async_connection` / :func:`get_async_extra_dejson`: a connection and its extra
  inside a trigger (``Connection.aextra_dejson`` is 3.3.2+); :func:`to_thread`: blocking work
  of a trigger, in a thread whose requests to Airflow are safe on 3.0 too;
* :func:`task_state_store`: ``context["task_state_store"]`` (3.3+), or the same get / set /
  delete kept in an Airflow Variable before;
* :func:`iter_lines`: the lines of an ``ObjectStoragePath.open()`` file (3.0's cannot be iterated);
* :func:`connection_form_widgets` / :func:`connection_ui_field_behaviour`: the connection
  form for the hook's methods, read before 3.2 (from 3.2 Airflow reads ``conn-fields``).

What differs for a user is in ``docs/compatibility.md``.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import json
from collections.abc import Callable, Iterator, Mapping
from typing import IO, Any, TypeVar

T = TypeVar("T")

# name -> the places it may live, newest Airflow first; the first that imports wins.
_SDK_EXCEPTIONS = ("airflow.sdk.exceptions", "airflow.exceptions")  # airflow.exceptions before 3.2
_WHERE: dict[str, tuple[str, ...]] = {
    "Asset": ("airflow.sdk",),
    "BaseHook": ("airflow.sdk", "airflow.hooks.base"),  # airflow.hooks.base on 3.0
    "BaseOperator": ("airflow.sdk",),
    "BaseSensorOperator": ("airflow.sdk",),
    "Connection": ("airflow.sdk",),
    "Context": ("airflow.sdk",),
    "ObjectStoragePath": ("airflow.sdk",),
    "PokeReturnValue": ("airflow.sdk",),
    "Variable": ("airflow.sdk",),
    "conf": ("airflow.sdk", "airflow.configuration"),  # airflow.sdk.conf is 3.2+
    "mask_secret": ("airflow.sdk.log",),
    "AirflowException": _SDK_EXCEPTIONS,
    "AirflowFailException": _SDK_EXCEPTIONS,
    "AirflowNotFoundException": _SDK_EXCEPTIONS,
    "AirflowSensorTimeout": _SDK_EXCEPTIONS,
    "AirflowSkipException": _SDK_EXCEPTIONS,
    "AirflowTaskTimeout": _SDK_EXCEPTIONS,
    "TaskDeferred": _SDK_EXCEPTIONS,
    "BaseTrigger": ("airflow.triggers.base",),
    "TriggerEvent": ("airflow.triggers.base",),
    # OpenLineage (the [openlineage] extra): used only by operators/lineage.py, when reporting
    "OperatorLineage": ("airflow.providers.openlineage.extractors",),
    "InputDataset": ("airflow.providers.common.compat.openlineage.facet",),
    "OutputDataset": ("airflow.providers.common.compat.openlineage.facet",),
    "OutputStatisticsOutputDatasetFacet": ("airflow.providers.common.compat.openlineage.facet",),
}

__all__ = [
    *sorted(_WHERE),
    "connection_form_widgets",
    "connection_ui_field_behaviour",
    "get_async_connection",
    "get_async_extra_dejson",
    "iter_lines",
    "task_state_store",
    "to_thread",
]


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


def _attr(name: str) -> Any:
    """A name of ``_WHERE`` from inside this module (module ``__getattr__`` is not used there)."""
    return globals()[name] if name in globals() else __getattr__(name)


# ----------------------------------------------------------------------------- triggers
def _has_async_extra() -> bool:
    """Airflow 3.3.2+: ``Connection.aextra_dejson`` and an ``aget_connection`` that masks asynchronously."""
    return hasattr(_attr("Connection"), "aextra_dejson")


async def get_async_connection(conn_id: str) -> Any:
    """The connection ``conn_id``, fetched without blocking (or deadlocking) a trigger's event loop.

    3.3.2+: ``BaseHook.aget_connection``. Before, ``aget_connection`` (3.1, 3.2) masks the
    secrets with a synchronous call to the supervisor that can deadlock the event loop, and
    3.0 has none: the synchronous ``get_connection`` runs in a worker thread (asgiref's
    ``sync_to_async``, whose calls back into the triggerer's loop are safe).
    """
    base_hook = _attr("BaseHook")
    if _has_async_extra():
        return await base_hook.aget_connection(conn_id)
    from asgiref.sync import sync_to_async

    return await sync_to_async(base_hook.get_connection)(conn_id)


async def to_thread(func: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """``asyncio.to_thread`` for triggers: ``func`` in a worker thread, off the event loop.

    Through asgiref's ``sync_to_async``, so that what ``func`` asks of Airflow's supervisor
    from that thread is relayed by the triggerer's own event loop. Airflow 3.0's triggerer
    relays it from a new event loop otherwise, concurrently with its own requests: the
    answers come back out of order and the trigger runner dies ("Response read out of
    order"). Building a hook sends such a request on every version (``mask_secret``).
    """
    from asgiref.sync import sync_to_async

    return await sync_to_async(functools.partial(func, *args, **kwargs), thread_sensitive=False)()


async def get_async_extra_dejson(conn: Any) -> dict[str, Any]:
    """``conn.extra_dejson`` (secrets masked) from a trigger: ``aextra_dejson()`` on 3.3.2+, else in a thread."""
    if _has_async_extra():
        return await conn.aextra_dejson()
    from asgiref.sync import sync_to_async

    return await sync_to_async(lambda: conn.extra_dejson)()


# ----------------------------------------------------------------------------- task state
VARIABLE_PREFIX = "rtcim_task_state__"
"""Variables holding task state on Airflow < 3.3 are named ``rtcim_task_state__<hash>``."""


class VariableTaskStateStore:
    """``context["task_state_store"]``'s ``get`` / ``set`` / ``delete``, kept in Airflow Variables.

    For Airflow < 3.3, which has no task state store. Like it, the values are JSON, scoped to
    (DAG, run, task, map index) and kept across reschedules and retries (Variables, unlike
    XCom, are not cleared when a task instance starts). Each key is one Variable named
    ``rtcim_task_state__<hash of the scope and key>`` (the description says which task
    instance it belongs to); ``delete`` removes it. Unlike the 3.3 store there is no
    retention: a Variable left by a task that never finished stays until deleted.
    """

    def __init__(self, *, dag_id: str, run_id: str, task_id: str, map_index: int) -> None:
        self.scope = {"dag_id": dag_id, "run_id": run_id, "task_id": task_id, "map_index": map_index}

    def __repr__(self) -> str:
        return f"<VariableTaskStateStore {self.scope}>"

    def variable_key(self, key: str) -> str:
        """The name of the Variable that holds ``key`` for this task instance."""
        digest = hashlib.sha256(json.dumps([self.scope, key], sort_keys=True).encode()).hexdigest()
        return VARIABLE_PREFIX + digest[:40]

    def get(self, key: str, default: Any = None) -> Any:
        raw = _attr("Variable").get(self.variable_key(key), default=None)
        if raw is None:
            return default
        try:
            stored = json.loads(raw) if isinstance(raw, str) else raw
        except ValueError:
            return default
        if not isinstance(stored, dict) or stored.get("scope") != self.scope or stored.get("key") != key:
            return default
        return stored.get("value", default)

    def set(self, key: str, value: Any) -> None:
        if value is None:
            raise ValueError("Cannot set value as None")
        variable = _attr("Variable")
        name = self.variable_key(key)
        text = json.dumps({"scope": self.scope, "key": key, "value": value}, sort_keys=True)
        scope = self.scope
        description = (
            f"airflow-provider-rtcim: task state {key!r} of {scope['dag_id']}/{scope['run_id']}/"
            f"{scope['task_id']}[{scope['map_index']}] (Airflow < 3.3 has no task_state_store); "
            "removed when the task is done with it"
        )
        variable.set(name, text, description=description)
        # Airflow 3.0's Variable.set logs a failure instead of raising: a lost value would
        # silently change what the next poke does, so check it was kept.
        if self.get(key) != json.loads(json.dumps(value)):
            raise _attr("AirflowException")(f"Could not keep task state {key!r} in the Variable {name!r}")

    def delete(self, key: str) -> None:
        _attr("Variable").delete(self.variable_key(key))


def task_state_store(context: Mapping[str, Any]) -> Any:
    """``context["task_state_store"]`` (Airflow 3.3+), else a :class:`VariableTaskStateStore` for the task instance.

    None when there is neither (a context without a task instance, as in a bare ``poke({})``).
    """
    if "task_state_store" in context:
        return context["task_state_store"]
    ti = context.get("ti")
    if ti is None:
        return None
    map_index = getattr(ti, "map_index", -1)
    return VariableTaskStateStore(
        dag_id=ti.dag_id,
        run_id=ti.run_id,
        task_id=ti.task_id,
        map_index=-1 if map_index is None else int(map_index),
    )


# ----------------------------------------------------------------------------- object storage
def iter_lines(stream: IO[bytes]) -> Iterator[bytes]:
    """The lines of a binary file: 3.0's ``ObjectStoragePath.open()`` returns a wrapper with no ``__iter__``."""
    if hasattr(type(stream), "__iter__"):
        return iter(stream)
    return iter(stream.readline, b"")


# ----------------------------------------------------------------------------- connection form
def _connection_type(conn_type: str) -> dict[str, Any]:
    from airflow_provider_rtcim.get_provider_info import get_provider_info

    for entry in get_provider_info()["connection-types"]:
        if entry["connection-type"] == conn_type:
            return entry
    raise ValueError(f"no connection type {conn_type!r} in the provider info")


def connection_form_widgets(conn_type: str) -> dict[str, Any]:
    """The form's extra fields as wtforms fields, from the provider info's ``conn-fields``.

    Airflow < 3.2 builds the form from ``BaseHook.get_connection_form_widgets()`` (and needs
    wtforms installed for it); 3.2+ reads ``conn-fields`` and never calls the hook. One
    definition serves both: integer fields become ``IntegerField``, ``format: password``
    a ``PasswordField``, everything else a ``StringField``; an ``enum`` becomes an
    ``any_of`` validator of its non-null values (a select in the 3.0 and 3.1 UI, which cannot
    show a null choice), ``default`` the field's default.
    """
    from wtforms import IntegerField, PasswordField, StringField
    from wtforms.validators import Optional, any_of

    widgets: dict[str, Any] = {}
    for name, spec in _connection_type(conn_type).get("conn-fields", {}).items():
        schema = spec.get("schema", {})
        types = schema.get("type", "string")
        types = [types] if isinstance(types, str) else list(types)
        if schema.get("format") == "password":
            field_class = PasswordField
        elif "integer" in types:
            field_class = IntegerField
        else:
            field_class = StringField
        validators: list[Any] = [Optional()]
        # Not None: the 3.0 UI fails on a null choice ("No value found for item"); empty stays allowed.
        choices = [value for value in schema.get("enum", ()) if value is not None]
        if choices:
            validators.append(any_of(choices))
        widgets[name] = field_class(
            spec.get("label", name),
            validators=validators,
            description=spec.get("description", ""),
            default=schema.get("default"),
        )
    return widgets


def connection_ui_field_behaviour(conn_type: str) -> dict[str, Any]:
    """The provider info's ``ui-field-behaviour`` in the shape ``BaseHook.get_ui_field_behaviour()`` returns."""
    behaviour = _connection_type(conn_type).get("ui-field-behaviour", {})
    return {key.replace("-", "_"): value for key, value in behaviour.items()}
