"""Where a listing's rows go, and what a run publishes: XCom rows or one JSON Lines file, its
Asset (declared at DAG-parse time, mapped tasks included) and the run's summary.

* :class:`XComRows` and :class:`JsonlFile` are the two collectors of
  :class:`~airflow_provider_rtcim.operators.engine.ListingRun`;
* :func:`derive_asset`, :func:`with_outlet` and :class:`PartialWithAsset` declare the output
  Asset; :func:`asset_event_extra` is what its event carries;
* :func:`combine_summaries` adds the summaries of mapped tasks up into one (public: a DAG
  publishing one Asset event per run needs it).
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_rtcim.compat import Asset
from airflow_provider_rtcim.core.sink import JsonlSink, Spool, is_gzip_name, output_asset_uri
from airflow_provider_rtcim.storage import HashingWriter, check_path

if TYPE_CHECKING:
    from airflow_provider_rtcim.storage import AtomicFile


def utcnow() -> str:
    """Now, UTC, to the second: ``2026-01-02T03:04:05Z``."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


# ---------------------------------------------------------------------------------------
# collectors
# ---------------------------------------------------------------------------------------


class XComLimitExceeded(Exception):
    """Raised inside a worker when the XCom row budget is used up."""


class _Rows(list):  # type: ignore[type-arg]
    """One key's rows for XCom, counted against the run's budget as they arrive."""

    def __init__(self, budget: XComRows) -> None:
        super().__init__()
        self._budget = budget

    def write_row(self, row: dict[str, Any]) -> None:
        self._budget.take()
        self.append(row)

    def close(self) -> None:
        pass

    def discard(self) -> None:
        self.clear()


class XComRows:
    """The rows themselves, for XCom (which lives in the metadata database): at most ``limit``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.rows: list[dict[str, Any]] = []
        self._taken = 0
        self._lock = threading.Lock()

    def take(self) -> None:
        with self._lock:
            self._taken += 1
            if self._taken > self.limit:
                raise XComLimitExceeded

    def part(self) -> _Rows:
        return _Rows(self)

    def merge(self, part: _Rows) -> None:
        self.rows.extend(part)


class JsonlFile:
    """JSON Lines (gzip when the target is named ``.gz``) into the temporary object of ``out``:
    each key's rows in a local spool under ``spool_dir``, appended in key order.

    ``hashing``: count and SHA-256 the bytes written (an incremental run records them in its
    checkpoint): :attr:`writer` tells ``size`` and ``hexdigest()``.
    """

    def __init__(self, out: AtomicFile, *, spool_dir: str, hashing: bool = False) -> None:
        self.writer: HashingWriter | None = HashingWriter(out.raw) if hashing else None
        raw = self.writer if self.writer is not None else out.raw
        self.sink = JsonlSink(raw, compress=is_gzip_name(out.target.name))  # type: ignore[arg-type]
        self._spool_dir = spool_dir

    @property
    def count(self) -> int:
        return self.sink.count

    def part(self) -> Spool:
        return Spool(self._spool_dir)

    def merge(self, part: Spool) -> None:
        part.drain_into(self.sink)

    def close(self) -> None:
        self.sink.close()


# ---------------------------------------------------------------------------------------
# the Asset
# ---------------------------------------------------------------------------------------


def derive_asset(output_path: Any, asset: Asset | str | bool | None) -> Asset | None:
    """The Asset to declare as outlet, from ``asset`` or the un-rendered ``output_path``."""
    if asset is False:
        return None
    if isinstance(asset, Asset):
        return asset
    if isinstance(asset, str):
        if not asset.strip():
            raise ValueError("asset must be an Asset, an Asset URI, False or None, got an empty string")
        return Asset(asset.strip())
    if asset is not None and asset is not True:
        raise ValueError(f"asset must be an Asset, an Asset URI, False or None, got {asset!r}")
    if not isinstance(output_path, (str, os.PathLike)) and not hasattr(type(output_path), "protocol"):
        return None  # None (XCom output), or a value only known at run time (an XComArg)
    uri = output_asset_uri(str(output_path))
    return Asset(uri) if uri else None


def with_outlet(outlets: Any, asset: Asset | None) -> Any:
    """``outlets`` plus ``asset`` unless an Asset with the same URI is already there."""
    if asset is None:
        return outlets
    current = [] if outlets is None else list(outlets) if isinstance(outlets, (list, tuple)) else [outlets]
    if any(isinstance(o, Asset) and o.uri == asset.uri for o in current):
        return current
    return [*current, asset]


def declare_output(kwargs: dict[str, Any], output_path: Any, asset: Any) -> Asset | None:
    """Check ``output_path`` (unrendered) and add its Asset to ``kwargs["outlets"]``; returns it."""
    check_path(output_path, rendered=False)
    derived = derive_asset(output_path, asset)
    if derived is not None:
        kwargs["outlets"] = with_outlet(kwargs.get("outlets"), derived)
    return derived


class PartialWithAsset:
    """``partial`` that also declares the output Asset at DAG-parse time.

    A mapped operator's ``__init__`` only runs on the worker, too late for outlets, so the
    Asset derived from ``output_path`` / ``asset`` is added to the partial's ``outlets``; the
    rest is the base class's own ``partial``, looked up through the MRO. Like Airflow's own,
    calling ``partial`` on a task (not the class) is refused.
    """

    def __set_name__(self, owner: type, name: str) -> None:
        self._owner = owner
        self._name = name

    def __get__(self, obj: Any, cls: type | None = None) -> Callable[..., Any]:
        if obj is not None:

            def refuse(**kwargs: Any) -> Any:
                raise TypeError("partial can only be called on Operator classes, not Tasks themselves")

            return refuse
        base_partial = getattr(super(self._owner, cls), self._name)  # type: ignore[arg-type]

        def partial(**kwargs: Any) -> Any:
            declare_output(kwargs, kwargs.get("output_path"), kwargs.get("asset"))
            return base_partial(**kwargs)

        return partial


def asset_event_extra(summary: dict[str, Any], keys_noun: str, extra_keys: Sequence[str]) -> dict[str, Any]:
    """What a run's Asset event carries: the shared summary fields plus ``extra_keys``."""
    keys = ("path", "paths", "count", keys_noun, *extra_keys, "fetch_started_at", "fetch_finished_at")
    return {k: summary[k] for k in keys if k in summary}


def attach_asset_event(context: Any, asset: Asset | None, extra: dict[str, Any]) -> None:
    """Put ``extra`` on this run's event of ``asset`` (nothing without an Asset or outlet events)."""
    if asset is None:
        return
    try:
        events = context["outlet_events"]
    except KeyError:
        return
    events[asset].extra.update(extra)


def combine_summaries(summaries: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """One summary for a whole run from the summaries of its mapped tasks (in map order).

    ``paths`` lists every file, ``count`` and the key counts (``users``, ``conversations``),
    ``pages``, ``requests`` and ``retries`` are added up, ``user_id_type`` is kept when every
    summary has the same one, ``fetch_started_at`` is the
    earliest start and ``fetch_finished_at`` the latest end. This is what a run's single
    Asset event should carry (mapped tasks must not each publish the Asset: a consumer would
    run on fragments).
    """
    items = [dict(s) for s in summaries if s]
    out: dict[str, Any] = {"paths": [], "count": 0, "tasks": len(items)}
    for s in items:
        out["paths"].extend(s.get("paths") or ([s["path"]] if s.get("path") else []))
        for key in ("count", "users", "conversations", "not_found", "pages", "requests", "retries"):
            if key in s:
                out[key] = out.get(key, 0) + int(s[key])
    kinds = {s["user_id_type"] for s in items if s.get("user_id_type")}
    if len(kinds) == 1:
        out["user_id_type"] = kinds.pop()
    starts = [s["fetch_started_at"] for s in items if s.get("fetch_started_at")]
    ends = [s["fetch_finished_at"] for s in items if s.get("fetch_finished_at")]
    if starts:
        out["fetch_started_at"] = min(starts)
    if ends:
        out["fetch_finished_at"] = max(ends)
    return out


__all__ = [
    "JsonlFile",
    "PartialWithAsset",
    "XComLimitExceeded",
    "XComRows",
    "asset_event_extra",
    "attach_asset_event",
    "combine_summaries",
    "declare_output",
    "derive_asset",
    "utcnow",
    "with_outlet",
]
