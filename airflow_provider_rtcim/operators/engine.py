"""The listing operators' engine: where keys come from, and one listing per key on a bounded pool.

No Airflow class here (only its exception types, through :mod:`~airflow_provider_rtcim.compat`):

* :class:`KeyArgs` describes how an operator is given its keys (one argument for ids, one for a
  file of them), and :func:`read_keys` checks every key once, in full, before any request,
  then streams them again (:class:`Keys`);
* :class:`ListingRun` lists every key on the fan-out engine
  (:class:`~airflow_provider_rtcim.core.fanout.FanOut`) and hands each key's rows to a
  :class:`Collector` (XCom rows or a JSON Lines file: see
  :mod:`~airflow_provider_rtcim.operators.output`), in key order, with progress logs and the
  key named in every failure.
"""

from __future__ import annotations

import ast
import itertools
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from airflow_provider_rtcim.core.errors import RtcImError
from airflow_provider_rtcim.core.fanout import Cancelled, FanOut, StoppedError
from airflow_provider_rtcim.core.keys import (
    distinct_keys,
    ids_from_jsonl,
    keys_from_lines,
    parse_key_list,
)
from airflow_provider_rtcim.core.keys import plan_key_ranges as core_plan_key_ranges
from airflow_provider_rtcim.core.validation import validate_conversation_short_id, validate_int_user_id
from airflow_provider_rtcim.exceptions import RtcImApiError, RtcImListingFailed
from airflow_provider_rtcim.storage import open_lines

if TYPE_CHECKING:
    from airflow_provider_rtcim.compat import ObjectStoragePath
    from airflow_provider_rtcim.core.pagination import Listing

Check = Callable[[Any, str], Any]


@dataclass(frozen=True)
class KeyArgs:
    """How an operator is given its keys.

    :param arg: the argument holding one key or a list (``participant_user_id``).
    :param from_arg: the argument naming a file of keys (``participant_user_ids_from``).
    :param noun: what the keys are, for the summary and logs (``users``).
    :param file: ``"lines"`` (a text file, one id a line) or ``"jsonl"`` (rows this package
        wrote, whose ``file_fields`` values are the keys).
    :param file_fields: the JSON Lines fields that may hold the key: the first a row has.
    :param expected: what such a file is, for error messages.
    """

    arg: str
    from_arg: str
    noun: str
    file: str = "lines"
    file_fields: tuple[str, ...] = ()
    expected: str = ""

    def read_file(
        self, path: Any, *, check: Check, opaque: bool = False, fields: tuple[str, ...] | None = None
    ) -> Iterator[Any]:
        """The keys of the file ``path`` (duplicates included), each checked; ``fields``
        replaces :attr:`file_fields`. ``path`` may also be several files (a list, or a rendered
        list: see :func:`key_file_paths`), read one after another."""
        paths = key_file_paths(path, self.from_arg)
        if isinstance(paths, list):
            return itertools.chain.from_iterable(
                self.read_file(p, check=check, opaque=opaque, fields=fields) for p in paths
            )
        lines = open_lines(path, field=self.from_arg)
        source = f"{self.from_arg} {str(path)!r}"
        if self.file == "jsonl":
            return ids_from_jsonl(
                lines,
                source=source,
                validate=check,
                fields=fields or self.file_fields,
                expected=self.expected,
            )
        # a string id keeps its spaces: only the line ending goes
        return keys_from_lines(lines, source=source, validate=check, strip=not opaque)


def key_file_paths(value: Any, field: str) -> Any:
    """``value`` as one path, or a list of paths when it names several files.

    A list or tuple is several files; so is a rendered template written as a list
    (``"['s3://b/a.jsonl.gz', 's3://b/b.jsonl.gz']"``, what ``{{ ... ['paths'] }}`` renders to
    without native rendering). Anything else is one path. A ``ValueError`` names ``field`` when
    a list holds something that is not a path."""
    if isinstance(value, str) and value.lstrip().startswith("["):
        try:
            value = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError) as exc:
            raise ValueError(f"{field}: {value!r} looks like a list of files but does not parse") from exc
    if not isinstance(value, (list, tuple)):
        return value
    bad = [p for p in value if not isinstance(p, (str, os.PathLike))]
    if bad:
        raise ValueError(f"{field}: a list of files must hold paths or URLs, got {bad[0]!r}")
    return list(value)


USER_KEYS = KeyArgs(arg="participant_user_id", from_arg="participant_user_ids_from", noun="users")
CONVERSATION_KEYS = KeyArgs(
    arg="conversation_short_id",
    from_arg="conversations_from",
    noun="conversations",
    file="jsonl",
    file_fields=("ConversationShortId",),
    expected="the conversations operator's rows",
)
USER_ID_KEYS = KeyArgs(
    arg="user_id",
    from_arg="users_from",
    noun="users",
    file="jsonl",
    file_fields=("ParticipantUserId", "UserId"),
    expected="rows this package wrote (members, conversations or users), or name the field with key_field=",
)


def check_key_source(value: Any, from_value: Any, keys: KeyArgs) -> None:
    """Exactly one of the two key arguments (a ``ValueError`` naming both otherwise)."""
    if value is None and from_value is None:
        raise ValueError(f"pass {keys.arg} (one id or a list) or {keys.from_arg} (a file of them)")
    if value is not None and from_value is not None:
        raise ValueError(f"pass either {keys.arg} or {keys.from_arg}, not both")


class Keys:
    """The task's keys, checked once in full before any request, then streamed again."""

    def __init__(self, make: Callable[[], Iterator[Any]], count: int, duplicates: int) -> None:
        self._make = make
        self.count = count
        self.duplicates = duplicates

    def __iter__(self) -> Iterator[Any]:
        return self._make()


def read_keys(
    value: Any,
    from_value: Any,
    *,
    keys: KeyArgs,
    check: Check,
    opaque: bool = False,
    key_range: tuple[int, int | None] | None = None,
    keep: Callable[[Any], bool] | None = None,
    fields: tuple[str, ...] | None = None,
) -> Keys:
    """Every key checked and counted in one pass (one read of a file) before any request.

    ``key_range`` takes the distinct keys ``start..stop-1``; ``keep`` then keeps only the keys
    it accepts (a shard). The returned :class:`Keys` streams the same keys again (a second
    read of the file), never holding them all.
    """
    check_key_source(value, from_value, keys)
    if value is not None:
        given = parse_key_list(value, field=keys.arg, validate=check, opaque=opaque)

        def source() -> Iterator[Any]:
            return iter(given)
    else:

        def source() -> Iterator[Any]:
            return keys.read_file(from_value, check=check, opaque=opaque, fields=fields)

    def make() -> Iterator[Any]:
        stream = distinct_keys(source(), key_range=key_range)
        return stream if keep is None else (k for k in stream if keep(k))

    duplicates = [0]

    def dup(_key: Any) -> None:
        duplicates[0] += 1

    counted: Iterable[Any] = distinct_keys(source(), key_range=key_range, on_duplicate=dup)
    if keep is not None:
        counted = (k for k in counted if keep(k))
    count = sum(1 for _ in counted)
    return Keys(make, count, duplicates[0])


class KeyBatch(list):  # type: ignore[type-arg]
    """Keys sent in one request of a batch action; shown as ``[first..last] (n ids)``."""

    def __repr__(self) -> str:
        if len(self) <= 2:
            return super().__repr__()
        return f"[{self[0]!r}..{self[-1]!r}] ({len(self)} ids)"


def in_batches(keys: Keys, size: int) -> Keys:
    """``keys`` in :class:`KeyBatch` es of at most ``size``, streamed (for a batch action)."""

    def make() -> Iterator[Any]:
        batch = KeyBatch()
        for key in keys:
            batch.append(key)
            if len(batch) == size:
                yield batch
                batch = KeyBatch()
        if batch:
            yield batch

    return Keys(make, -(-keys.count // size), keys.duplicates)


def plan_key_ranges(total: int, *, batch_size: int, max_tasks: int | None = None) -> list[list[int]]:
    """``[[start, stop], ...]`` covering the keys ``0..total-1`` in batches of ``batch_size``,
    enlarged when needed so that there are at most ``max_tasks`` batches: what a DAG hands its
    mapped tasks instead of the ids. ``max_tasks`` defaults to this Airflow's
    ``[core] max_map_length`` (a mapped task list may not be longer), so a DAG needs no config
    lookup of its own. See :func:`~airflow_provider_rtcim.core.keys.plan_key_ranges`."""
    if max_tasks is None:
        from airflow_provider_rtcim.compat import conf

        max_tasks = conf.getint("core", "max_map_length", fallback=1024)
    return core_plan_key_ranges(total, batch_size=batch_size, max_tasks=max_tasks)


def count_distinct_keys(path: str | ObjectStoragePath | list[Any], *, kind: str) -> int:
    """How many distinct keys a file (or a list of files) holds, streamed: what to plan mapped
    batches with (see :func:`plan_key_ranges`).

    ``kind="user_ids"``: a text file of user ids, one a line (what ``participant_user_ids_from``
    reads); ``kind="conversations"``: the conversations operator's JSON Lines (what
    ``conversations_from`` reads: its distinct ``ConversationShortId`` values);
    ``kind="users"``: rows naming users (what ``users_from`` reads: the distinct
    ``ParticipantUserId`` or ``UserId`` values of a members, conversations or users file).
    """
    found = _COUNTED.get(kind)
    if found is None:
        raise ValueError(f"kind must be one of {', '.join(map(repr, _COUNTED))}, got {kind!r}")
    keys, check = found
    return sum(1 for _ in distinct_keys(keys.read_file(path, check=check)))


_COUNTED: dict[str, tuple[KeyArgs, Check]] = {
    "user_ids": (USER_KEYS, validate_int_user_id),
    "conversations": (CONVERSATION_KEYS, validate_conversation_short_id),
    "users": (USER_ID_KEYS, validate_int_user_id),
}


# ---------------------------------------------------------------------------------------
# collectors and the run
# ---------------------------------------------------------------------------------------


class Part(Protocol):
    """One key's rows while its listing runs (on a worker thread)."""

    def write_row(self, row: dict[str, Any]) -> None: ...

    def close(self) -> None: ...

    def discard(self) -> None: ...


class Collector(Protocol):
    """Where a run's rows go: a new :class:`Part` per key (worker thread), then each finished
    part merged in key order (coordinating thread)."""

    def part(self) -> Part: ...

    def merge(self, part: Any) -> None: ...


class _Progress:
    """Thread-safe counters for the progress log."""

    def __init__(self, keys: int) -> None:
        self.keys = keys
        self.keys_done = 0
        self.rows = 0
        self._lock = threading.Lock()

    def row(self) -> None:
        with self._lock:
            self.rows += 1


def for_key(exc: RtcImError, field: str, key: Any) -> RtcImApiError:
    """The same error, its message prefixed with the key whose listing failed.

    A non-retryable one becomes :class:`RtcImListingFailed` (an ``AirflowFailException``):
    the task's ``retries`` cannot fix a bad AppId, a bad signature or a broken cursor.
    """
    shown = key if isinstance(key, int) else repr(key)
    message = f"listing {field}={shown} failed: {exc.message}"
    if not exc.retryable:
        return RtcImListingFailed.from_error(exc, message)
    return RtcImApiError.from_error(exc, message)


def hook_stats(hook: Any, base: dict[str, int] | None = None) -> dict[str, int]:
    """``pages``, ``requests`` and ``retries`` of ``hook`` (since ``base``)."""
    stats = dict(getattr(hook, "stats", {}) or {})
    out = {key: int(stats.get(key, 0)) for key in ("pages", "requests", "retries")}
    if base:
        out = {key: out[key] - base.get(key, 0) for key in out}
    return out


class ListingRun:
    """Every key's listing on a bounded pool of threads sharing one hook.

    :param listing: ``listing(key) -> Listing`` (called on a worker thread).
    :param decorate: ``decorate(row, key) -> row`` (the fields the operator adds).
    :param on_key_done: ``on_key_done(key, listing)`` on the coordinating thread, in key
        order, once the key's rows are merged (an incremental run records its bookmark).
    """

    def __init__(
        self,
        *,
        hook: Any,
        log: Any,
        key_arg: str,
        keys_noun: str,
        rows_noun: str,
        max_workers: int,
        progress_interval: float,
    ) -> None:
        self.hook = hook
        self.log = log
        self.key_arg = key_arg
        self.keys_noun = keys_noun
        self.rows_noun = rows_noun
        self.max_workers = max_workers
        self.progress_interval = progress_interval
        self.engine: FanOut[Any, Any] | None = None

    def stop(self) -> None:
        if self.engine is not None:
            self.engine.stop.set()

    def run(
        self,
        keys: Keys,
        *,
        listing: Callable[[Any], Listing],
        decorate: Callable[[dict[str, Any], Any], dict[str, Any]],
        collector: Collector,
        on_key_done: Callable[[Any, Listing], None] | None = None,
    ) -> dict[str, int]:
        """List every key; returns the hook's ``pages``/``requests``/``retries`` of this run."""
        from airflow_provider_rtcim.compat import AirflowFailException

        hook, log = self.hook, self.log
        base = hook_stats(hook)
        progress = _Progress(keys.count)
        started = time.monotonic()
        last_log = [started]

        def work(slot: int, key: Any) -> tuple[Any, Any]:
            part = collector.part()
            try:
                found = listing(key)
                check_stop, add, row = engine.check_stop, part.write_row, progress.row
                for item in found:
                    check_stop()
                    add(decorate(item, key))
                    row()
            except RtcImError as exc:
                part.discard()
                raise for_key(exc, self.key_arg, key) from exc
            except BaseException:  # Cancelled included
                part.discard()
                raise
            part.close()  # no file descriptor while it waits its turn
            if found.duplicates:
                log.info(
                    "%s %s: skipped %d duplicate %s across pages",
                    self.key_arg,
                    key,
                    found.duplicates,
                    self.rows_noun,
                )
            return part, found

        def on_done(slot: int, key: Any, result: tuple[Any, Any]) -> None:
            part, found = result
            collector.merge(part)
            if on_key_done is not None:
                on_key_done(key, found)
            progress.keys_done += 1

        def on_tick() -> None:
            now = time.monotonic()
            if now - last_log[0] >= self.progress_interval:
                last_log[0] = now
                self._log_progress(progress, hook_stats(hook, base), now - started)

        engine = self.engine = FanOut(
            work=work,
            on_done=on_done,
            discard=lambda result: result[0].discard(),
            max_workers=max(1, min(self.max_workers, keys.count)),
            on_tick=on_tick,
            tick=min(self.progress_interval, 1.0),
        )
        try:
            engine.run(keys)
        except StoppedError as exc:
            raise AirflowFailException(f"The listing was stopped: {exc}") from None
        return hook_stats(hook, base)

    def _log_progress(self, progress: _Progress, stats: dict[str, int], elapsed: float) -> None:
        self.log.info(
            "Progress: %d/%d %s done, %d %s, %d pages, %d requests (%d retries), %.1f requests/s, %.0f %s/s",
            progress.keys_done,
            progress.keys,
            self.keys_noun,
            progress.rows,
            self.rows_noun,
            stats["pages"],
            stats["requests"],
            stats["retries"],
            stats["requests"] / elapsed if elapsed > 0 else 0.0,
            progress.rows / elapsed if elapsed > 0 else 0.0,
            self.rows_noun,
        )


__all__ = [
    "CONVERSATION_KEYS",
    "USER_ID_KEYS",
    "USER_KEYS",
    "Cancelled",
    "Collector",
    "KeyArgs",
    "Keys",
    "ListingRun",
    "Part",
    "check_key_source",
    "count_distinct_keys",
    "for_key",
    "hook_stats",
    "read_keys",
]
