"""Where an operator's keys come from: one id, a list, a rendered JSON list, or a file (pure).

Keys (user ids, conversation ids) are streamed, never all held at once: a million keys cost a
compact set of the ids seen (to drop duplicates), not a list. ``key_range`` takes a slice of
the *distinct* keys in source order, so mapped tasks can each take a range of one file.

    >>> list(distinct_keys([3, 1, 3, 2], key_range=(1, 3)))
    [1, 2]
"""

from __future__ import annotations

import ast
import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from airflow_provider_rtcim.core.intset import Int64Set

K = TypeVar("K", int, str)


def _opaque_string_list(text: str, field: str) -> Any:
    """A rendered string for opaque (string) ids: a list when it is written as one, else ``text``.

    Text that, stripped, starts with ``[`` and ends with ``]`` must be a JSON list or the
    Python literal of a list (what a Jinja template renders from a list of strings); it is
    returned as that list (its items are checked as ids by the caller: an int in it is an
    error, as in a Python list). Anything else is one id, verbatim: no comma splitting (an
    opaque id may hold a comma) and no trimming. An id that itself looks like a list is passed
    inside a list: ``['[x]']``.
    """
    stripped = text.strip()
    if not (stripped.startswith("[") and stripped.endswith("]")):
        return text
    try:
        parsed = json.loads(stripped)
    except json.JSONDecodeError:
        try:
            parsed = ast.literal_eval(stripped)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            parsed = None
    if not isinstance(parsed, list):
        raise ValueError(
            f"{field} looks like a list but is neither a JSON list nor a list literal: {text!r} "
            f"(to use it as one string id, pass it inside a list: [{text!r}])"
        )
    return parsed


def parse_key_list(
    value: Any, *, field: str, validate: Callable[[Any, str], K], opaque: bool = False
) -> list[K]:
    """One key, a list of keys, or a rendered template of either (a JSON list, or comma-separated
    integers), each checked by ``validate(value, field)``; a ``ValueError`` names the field.

    ``opaque=True`` (string ids): a string is one id unless it is written as a list (a JSON
    list, or the Python literal a template renders from a list); commas never split it.
    """
    if isinstance(value, str) and opaque:
        value = _opaque_string_list(value, field)
    elif isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                raise ValueError(
                    f"{field} must be an id or a list of ids, got the unparsable string {value!r}"
                ) from None
        elif "," in text:
            value = [part for part in (p.strip() for p in text.split(",")) if part]
            if not value:
                raise ValueError(f"{field} must name at least one id, got {text!r}")
    if isinstance(value, (list, tuple, set, frozenset)) or (
        not isinstance(value, (str, bytes, int, dict)) and hasattr(value, "__iter__")
    ):
        items = list(value) if not isinstance(value, (set, frozenset)) else sorted(value, key=str)
        if not items:
            raise ValueError(f"{field} must name at least one id, got an empty list")
        return [validate(v, f"{field}[{i}]") for i, v in enumerate(items)]
    return [validate(value, field)]


def parse_key_range(value: Any, field: str = "key_range") -> tuple[int, int | None] | None:
    """``None``, or ``[start, stop]`` / ``(start, stop)`` / ``{"start":, "stop":}`` (stop may be
    None: to the end) / a rendered JSON form of these, as a checked ``(start, stop)``."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise ValueError(f"{field} must be [start, stop], got the unparsable string {value!r}") from None
    if isinstance(value, dict):
        value = [value.get("start", 0), value.get("stop")]
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ValueError(f"{field} must be [start, stop] (stop may be null: to the end), got {value!r}")
    start, stop = value
    if isinstance(start, bool) or not isinstance(start, int) or start < 0:
        raise ValueError(f"{field}: start must be an integer >= 0, got {start!r}")
    if stop is not None and (isinstance(stop, bool) or not isinstance(stop, int) or stop < start):
        raise ValueError(f"{field}: stop must be null or an integer >= start ({start}), got {stop!r}")
    return start, stop


class SeenKeys:
    """The keys seen so far: ints in a compact :class:`Int64Set`, strings in a ``set``."""

    __slots__ = ("_add_int", "_ints", "_strs")

    def __init__(self) -> None:
        self._ints = Int64Set()
        self._add_int = self._ints.add
        self._strs: set[str] = set()

    def add(self, key: int | str) -> bool:
        """Add ``key``; True when it was new."""
        if type(key) is int or isinstance(key, int):
            return self._add_int(key)
        if key in self._strs:
            return False
        self._strs.add(key)
        return True


def distinct_keys(
    keys: Iterable[K],
    *,
    key_range: tuple[int, int | None] | None = None,
    on_duplicate: Callable[[K], None] | None = None,
) -> Iterator[K]:
    """Each key once, in source order, lazily; only the distinct keys ``start..stop-1`` when
    ``key_range`` is given (duplicates before ``stop`` are reported to ``on_duplicate``)."""
    start, stop = key_range if key_range is not None else (0, None)
    seen = SeenKeys()
    index = 0
    for key in keys:
        if stop is not None and index >= stop:
            return
        if not seen.add(key):
            if on_duplicate is not None:
                on_duplicate(key)
            continue
        if index >= start:
            yield key
        index += 1


def keys_from_lines(
    lines: Iterable[str | bytes], *, source: str, validate: Callable[[Any, str], K], strip: bool = True
) -> Iterator[K]:
    """Keys from a text file, one a line (blank lines skipped), each checked by ``validate``;
    an error names ``source`` and the line number. ``strip=False`` keeps surrounding spaces
    (string ids are opaque) and only drops the line ending. A UTF-8 byte order mark opening
    the file is dropped (it is never part of an id)."""
    for number, raw in enumerate(lines, 1):
        line = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        line = line.rstrip("\r\n")
        if number == 1:
            line = line.removeprefix("\ufeff")
        if not line.strip():
            continue
        yield validate(line.strip() if strip else line, f"{source} line {number}")


def ids_from_jsonl(
    lines: Iterable[str | bytes],
    *,
    source: str,
    validate: Callable[[Any, str], K],
    fields: tuple[str, ...] = ("ConversationShortId",),
    expected: str = "the conversations operator's rows",
) -> Iterator[K]:
    """The id of every row of a JSON Lines file this package wrote: the first of ``fields`` a
    row has, in file order, duplicates included (see :func:`distinct_keys`)."""
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        where = f"{source} line {number}"
        try:
            row = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ValueError(f"{where} is not JSON: expected {expected} as JSON Lines") from None
        field = next((f for f in fields if isinstance(row, dict) and f in row), None)
        if field is None:
            raise ValueError(f"{where} has no {' or '.join(fields)}: expected {expected}")
        yield validate(row[field], f"{where} {field}")


def conversation_ids_from_jsonl(
    lines: Iterable[str | bytes], *, source: str, validate: Callable[[Any, str], int]
) -> Iterator[int]:
    """The ``ConversationShortId`` of every row of a JSON Lines file (as the conversations
    operator writes it), in file order, duplicates included (see :func:`distinct_keys`)."""
    return ids_from_jsonl(lines, source=source, validate=validate)


def plan_key_ranges(total: int, *, batch_size: int, max_tasks: int | None = None) -> list[list[int]]:
    """``[[start, stop], ...]`` covering the keys ``0..total-1`` in batches of ``batch_size``,
    enlarged when needed so that there are at most ``max_tasks`` batches (e.g. Airflow's
    ``[core] max_map_length``): what a DAG hands its mapped tasks instead of the ids.

        >>> plan_key_ranges(7, batch_size=3)
        [[0, 3], [3, 6], [6, 7]]
        >>> plan_key_ranges(10, batch_size=1, max_tasks=4)
        [[0, 3], [3, 6], [6, 9], [9, 10]]
    """
    if isinstance(total, bool) or not isinstance(total, int) or total < 0:
        raise ValueError(f"total must be an integer >= 0, got {total!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    if max_tasks is not None and (
        isinstance(max_tasks, bool) or not isinstance(max_tasks, int) or max_tasks < 1
    ):
        raise ValueError(f"max_tasks must be an integer >= 1, got {max_tasks!r}")
    size = batch_size
    if max_tasks is not None and -(-total // size) > max_tasks:
        size = -(-total // max_tasks)
    return [[start, min(start + size, total)] for start in range(0, total, size)]
