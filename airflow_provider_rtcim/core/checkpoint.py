"""Incremental message sync: the checkpoint format, its checks, shards and recovery (pure).

A **bookmark** says where a conversation's last committed listing stopped: the
``NewCursor`` to send next (fed back verbatim, never computed) and the largest
``IndexInConversation`` already taken (a resumed listing drops every message not past it,
so a cursor that restarts or repeats cannot double a message). A **checkpoint** is one
shard's bookmarks plus what is needed to commit them together with one output file:

.. code-block:: json

    {"format": "airflow-provider-rtcim/messages-checkpoint", "version": 1,
     "state": "committed", "generation": 3, "app_id": 100001,
     "shard_index": 0, "shard_count": 4, "written_at": "2026-01-02T03:04:05Z",
     "run": {"dag_id": "...", "run_id": "...", "task_id": "...", "map_index": 0},
     "output": {"path": "s3://.../part-0.jsonl.gz", "count": 120, "bytes": 5120, "sha256": "..."},
     "summary": {...},
     "bookmarks": {
      "7205759403792793601": {"cursor": 46, "index": 45},
      ...
     }}

One bookmark a line (diffable, greppable); nothing per message, so the size grows only with
the number of conversations. Everything read is validated: a file that is not JSON, of
another format or version, of another AppId or shard, is a :class:`CheckpointError` naming
the path, never a silent full re-export.

**Commit protocol** (the I/O lives in the operator; the decisions are here). A run with
committed generation ``g`` writes its new state as a *pending* checkpoint of generation
``g + 1`` naming its output (path, size, SHA-256), then publishes the output, then commits
(the checkpoint itself, atomically), then deletes the pending one. On start,
:func:`recover` looks at a leftover pending checkpoint: generation ``<= g`` is stale (the
commit happened), ``g + 1`` is rolled forward when its output is published with exactly the
recorded content and rolled back when it is absent; anything else is an error. Generations,
not file timestamps or renames, decide, so an object store's copy-then-delete rename cannot
confuse recovery.

No Airflow import, no I/O.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

FORMAT = "airflow-provider-rtcim/messages-checkpoint"
VERSION = 1
STATES = ("committed", "pending")
INT64_MAX = 2**63 - 1

__all__ = [
    "FORMAT",
    "VERSION",
    "Bookmark",
    "Checkpoint",
    "CheckpointError",
    "Recovery",
    "check_compatible",
    "check_shard",
    "dumps",
    "loads",
    "merge_bookmarks",
    "pending_name",
    "recover",
    "reshard",
    "retry_decision",
    "shard_name",
    "shard_of",
]


class CheckpointError(ValueError):
    """A checkpoint that cannot be used as it is (corrupt, foreign, of another shard layout)."""


@dataclass(frozen=True)
class Bookmark:
    """Where a conversation's committed listing stopped.

    :param cursor: the ``NewCursor`` of its last page (``Listing.resume_cursor``), sent back
        verbatim by the next run.
    :param index: the largest ``IndexInConversation`` taken (``Listing.last_position``), None
        when no message was ever taken (an empty conversation).
    """

    cursor: int
    index: int | None = None


@dataclass
class Checkpoint:
    """One shard's bookmarks and the output they were committed with."""

    app_id: int
    generation: int = 0
    state: str = "committed"
    shard_index: int | None = None
    shard_count: int | None = None
    bookmarks: dict[int, Bookmark] = field(default_factory=dict)
    output: dict[str, Any] | None = None
    run: dict[str, Any] | None = None
    summary: dict[str, Any] | None = None
    written_at: str | None = None
    resharded_from: dict[str, Any] | None = None

    def as_committed(self) -> Checkpoint:
        return dataclasses.replace(self, state="committed")


# ----------------------------------------------------------------------------- format


def _header(cp: Checkpoint) -> dict[str, Any]:
    head: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "state": cp.state,
        "generation": cp.generation,
        "app_id": cp.app_id,
        "shard_index": cp.shard_index,
        "shard_count": cp.shard_count,
        "written_at": cp.written_at,
        "run": cp.run,
        "output": cp.output,
        "summary": cp.summary,
    }
    if cp.resharded_from is not None:
        head["resharded_from"] = cp.resharded_from
    return head


def dumps(cp: Checkpoint) -> bytes:
    """The checkpoint as UTF-8 JSON: header fields one a line, then one bookmark a line, sorted."""
    lines = ["{"]
    for name, value in _header(cp).items():
        lines.append(f" {json.dumps(name)}: {json.dumps(value, ensure_ascii=False, sort_keys=True)},")
    lines.append(' "bookmarks": {')
    marks = sorted(cp.bookmarks.items())
    for i, (sid, mark) in enumerate(marks):
        index = "null" if mark.index is None else str(mark.index)
        comma = "," if i < len(marks) - 1 else ""
        lines.append(f'  "{sid}": {{"cursor": {mark.cursor}, "index": {index}}}{comma}')
    lines.append(" }")
    lines.append("}")
    return ("\n".join(lines) + "\n").encode("utf-8")


def _int(value: Any, what: str, *, low: int = 0, high: int = INT64_MAX, none: bool = False) -> Any:
    if value is None and none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(
            f"{what} must be an integer {low}..{high}{' or null' if none else ''}, got {value!r}"
        )
    return value


def loads(data: bytes | str, *, where: str) -> Checkpoint:
    """Parse and validate a checkpoint; a :class:`CheckpointError` names ``where`` and the fix."""
    fix = (
        "restore it from a backup, or delete it (and its .pending sibling) to start that shard "
        "over with a full re-export"
    )
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"checkpoint {where} is not valid JSON ({exc}): {fix}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        shown = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise CheckpointError(
            f"checkpoint {where} is not an RTC IM messages checkpoint (format {shown!r}, expected "
            f"{FORMAT!r}): is checkpoint_path pointing at another file? Point it elsewhere, or {fix}"
        )
    version = doc.get("version")
    if version != VERSION:
        newer = isinstance(version, int) and not isinstance(version, bool) and version > VERSION
        raise CheckpointError(
            f"checkpoint {where} has version {version!r}; this provider reads version {VERSION}"
            + (": it was written by a newer provider release, upgrade this one" if newer else f": {fix}")
        )
    try:
        state = doc.get("state")
        if state not in STATES:
            raise ValueError(f"state must be one of {STATES}, got {state!r}")
        shard_count = _int(doc.get("shard_count"), "shard_count", low=1, none=True)
        shard_index = _int(doc.get("shard_index"), "shard_index", none=True)
        if (shard_count is None) != (shard_index is None) or (
            shard_count is not None and shard_index >= shard_count
        ):
            raise ValueError(f"shard_index {shard_index!r} does not fit shard_count {shard_count!r}")
        for name in ("run", "output", "summary", "resharded_from"):
            if doc.get(name) is not None and not isinstance(doc[name], dict):
                raise ValueError(f"{name} must be an object or null")
        output = doc.get("output")
        if output is not None:
            if not isinstance(output.get("path"), str) or not output["path"]:
                raise ValueError("output.path must be a non-empty string")
            _int(output.get("bytes"), "output.bytes")
            if not isinstance(output.get("sha256"), str) or len(output["sha256"]) != 64:
                raise ValueError("output.sha256 must be 64 hex digits")
        raw_marks = doc.get("bookmarks")
        if not isinstance(raw_marks, dict):
            raise ValueError("bookmarks must be an object of conversation id -> bookmark")
        bookmarks: dict[int, Bookmark] = {}
        for key, mark in raw_marks.items():
            if not key.isdigit() or key != str(int(key)):
                raise ValueError(f"bookmark key {key!r} is not a decimal conversation id")
            if not isinstance(mark, dict) or set(mark) - {"cursor", "index"} or "cursor" not in mark:
                raise ValueError(
                    f"bookmark {key} must be {{'cursor': int, 'index': int or null}}, got {mark!r}"
                )
            bookmarks[_int(int(key), f"bookmark key {key}", low=1)] = Bookmark(
                _int(mark["cursor"], f"bookmark {key} cursor"),
                _int(mark.get("index"), f"bookmark {key} index", none=True),
            )
        cp = Checkpoint(
            app_id=_int(doc.get("app_id"), "app_id", low=1, high=2**31 - 1),
            generation=_int(doc.get("generation"), "generation", low=1 if output is not None else 0),
            state=state,
            shard_index=shard_index,
            shard_count=shard_count,
            bookmarks=bookmarks,
            output=output,
            run=doc.get("run"),
            summary=doc.get("summary"),
            written_at=doc.get("written_at"),
            resharded_from=doc.get("resharded_from"),
        )
    except ValueError as exc:
        raise CheckpointError(f"checkpoint {where} is corrupt: {exc}: {fix}") from None
    if cp.shard_count is not None:
        stray = next((s for s in cp.bookmarks if shard_of(s, cp.shard_count) != cp.shard_index), None)
        if stray is not None:
            raise CheckpointError(
                f"checkpoint {where} says shard {cp.shard_index} of {cp.shard_count} but holds a bookmark "
                f"of conversation {stray}, which is in shard {shard_of(stray, cp.shard_count)}: {fix}"
            )
    return cp


# ----------------------------------------------------------------------------- shards


def shard_of(conversation_short_id: int, shard_count: int) -> int:
    """The shard of a conversation: BLAKE2b of its decimal id, mod ``shard_count``.

    Stable across runs, processes and Python versions (not ``hash()``), and independent of
    which other conversations a run lists.

        >>> [shard_of(7205759403792793601, 4), shard_of(7205759403792793601, 1)]
        [2, 0]
    """
    if isinstance(shard_count, bool) or not isinstance(shard_count, int) or shard_count < 1:
        raise ValueError(f"shard_count must be an integer >= 1, got {shard_count!r}")
    digest = hashlib.blake2b(str(int(conversation_short_id)).encode("ascii"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % shard_count


def check_shard(shard_index: Any, shard_count: Any) -> tuple[int, int] | None:
    """``(shard_index, shard_count)`` checked, or None when both are unset."""
    if shard_index is None and shard_count is None:
        return None
    if shard_index is None or shard_count is None:
        raise ValueError("pass both shard_index and shard_count (or neither)")
    count = _int(shard_count, "shard_count", low=1, high=1_000_000)
    index = _int(shard_index, "shard_index")
    if index >= count:
        raise ValueError(f"shard_index must be 0..{count - 1} for shard_count={count}, got {index}")
    return index, count


def shard_name(name: str, shard: tuple[int, int] | None) -> str:
    """The checkpoint file name of a shard, derived from the base name.

    >>> shard_name("messages.json", (2, 8)), shard_name("messages.json", None)
    ('messages.shard-2-of-8.json', 'messages.json')
    """
    if shard is None:
        return name
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        stem, ext = name, ""
    return f"{stem}.shard-{shard[0]}-of-{shard[1]}" + (f".{ext}" if ext else "")


def pending_name(name: str) -> str:
    """The pending checkpoint's name beside the checkpoint (visible: delete both to start over)."""
    return f"{name}.pending"


def check_compatible(
    cp: Checkpoint, *, where: str, app_id: int, shard: tuple[int, int] | None, base: str
) -> None:
    """Refuse a checkpoint of another AppId or another shard layout, before any request."""
    if cp.app_id != app_id:
        raise CheckpointError(
            f"checkpoint {where} belongs to AppId {cp.app_id}, not {app_id}: give each AppId its "
            "own checkpoint_path"
        )
    mine = (cp.shard_index, cp.shard_count) if cp.shard_count is not None else None
    if mine != shard:
        raise CheckpointError(
            f"checkpoint {where} was written by {_layout(mine)}, but this task is {_layout(shard)}. "
            f"{reshard_hint(base, mine[1] if mine else None, shard[1] if shard else None)}"
        )


def _layout(shard: tuple[int, int] | None) -> str:
    return "an unsharded task" if shard is None else f"shard {shard[0]} of {shard[1]}"


def reshard_hint(base: str, old: int | None, new: int | None) -> str:
    """What to do when the shard count changed."""
    old_text = "no shards" if old is None else f"shard_count={old}"
    new_arg = "None" if new is None else str(new)
    return (
        f"The checkpoints under {base} were written with {old_text}. Either keep that, or carry "
        f"the bookmarks over before the next run: `python -m airflow_provider_rtcim.reshard "
        f"{base} {new_arg}` (or airflow_provider_rtcim.storage.reshard_checkpoints) merges them "
        "and splits them by the new count; deleting them instead starts over with a full re-export"
    )


# ----------------------------------------------------------------------------- bookmarks


def merge_bookmarks(base: Mapping[int, Bookmark], updates: Mapping[int, Bookmark]) -> dict[int, Bookmark]:
    """The committed bookmarks with this run's updates; conversations not listed are kept.

    An update never moves a conversation's ``index`` backwards (a listing resumed after
    ``index`` only ever takes messages past it).
    """
    out = dict(base)
    for sid, mark in updates.items():
        old = out.get(sid)
        if old is not None and old.index is not None and (mark.index is None or mark.index < old.index):
            mark = Bookmark(mark.cursor, old.index)
        out[sid] = mark
    return out


def reshard(checkpoints: Iterable[Checkpoint], shard_count: int | None) -> list[Checkpoint]:
    """Merge the checkpoints of one layout and split their bookmarks by a new shard count.

    Every input must be committed and of one AppId. Returns ``shard_count`` checkpoints
    (one when None), generation 0-based on the inputs' highest so that none goes back.
    """
    items = list(checkpoints)
    if not items:
        raise CheckpointError("reshard: no checkpoint to carry over")
    apps = {cp.app_id for cp in items}
    if len(apps) != 1:
        raise CheckpointError(f"reshard: the checkpoints belong to several AppIds: {sorted(apps)}")
    if any(cp.state != "committed" for cp in items):
        raise CheckpointError("reshard: a checkpoint is pending; run one sync with the old layout first")
    merged: dict[int, Bookmark] = {}
    for cp in items:
        merged = merge_bookmarks(merged, cp.bookmarks)
    generation = max(cp.generation for cp in items)
    origin = {
        "shard_count": items[0].shard_count,
        "generations": sorted((cp.shard_index or 0, cp.generation) for cp in items),
    }
    count = 1 if shard_count is None else shard_count
    out = []
    for index in range(count):
        marks = (
            merged
            if shard_count is None
            else {s: b for s, b in merged.items() if shard_of(s, shard_count) == index}
        )
        out.append(
            Checkpoint(
                app_id=items[0].app_id,
                generation=generation,
                shard_index=None if shard_count is None else index,
                shard_count=shard_count,
                bookmarks=marks,
                resharded_from=origin,
            )
        )
    return out


# ----------------------------------------------------------------------------- recovery


@dataclass(frozen=True)
class Recovery:
    """What to do with a leftover pending checkpoint: ``"none"`` (there is none), ``"stale"``
    (already committed: delete it), ``"roll_forward"`` (commit it: its output is published),
    ``"roll_back"`` (delete it: its output never appeared)."""

    action: str
    reason: str = ""


def recover(
    committed: Checkpoint | None, pending: Checkpoint | None, output_published: bool | None, *, where: str
) -> Recovery:
    """Decide about a leftover pending checkpoint (see the module docstring).

    :param output_published: for the pending one's output: True when it exists with exactly the
        recorded size and SHA-256, False when it does not exist, None when it exists with other
        content (an error: a file the checkpoint cannot account for).
    """
    if pending is None:
        return Recovery("none")
    g = committed.generation if committed is not None else 0
    if pending.state != "pending":
        raise CheckpointError(f"pending checkpoint {where} is marked {pending.state!r}, not 'pending'")
    if committed is not None and (committed.app_id, committed.shard_index, committed.shard_count) != (
        pending.app_id,
        pending.shard_index,
        pending.shard_count,
    ):
        raise CheckpointError(
            f"pending checkpoint {where} is of another AppId or shard than its checkpoint: delete it "
            "(the run that wrote it did not commit)"
        )
    if pending.generation <= g:
        return Recovery("stale", f"generation {pending.generation} is already committed (at {g})")
    if pending.generation != g + 1 or pending.output is None:
        raise CheckpointError(
            f"pending checkpoint {where} has generation {pending.generation} but the committed one "
            f"is at {g}: it does not follow it (was the checkpoint deleted or restored?). To start "
            "over delete both; otherwise restore the checkpoint it followed"
        )
    path = pending.output["path"]
    if output_published is True:
        return Recovery("roll_forward", f"its output {path} was published: committing generation {g + 1}")
    if output_published is False:
        return Recovery("roll_back", f"its output {path} was never published: generation {g} stands")
    raise CheckpointError(
        f"pending checkpoint {where} names the output {path}, which exists with other content than "
        "it recorded: something else wrote that file. Move it away and run again (the run rolls "
        "back), or restore the file"
    )


def retry_decision(committed: Checkpoint | None, *, output_path: str, run: Mapping[str, Any]) -> bool:
    """True when this run already committed its output (a retry): return its summary, rewrite nothing.

    Raises when ``output_path`` is the committed output of *another* run: writing it again
    would destroy messages that only that file holds.
    """
    if committed is None or committed.output is None or committed.output.get("path") != output_path:
        return False
    if dict(committed.run or {}) == dict(run):
        return True
    raise CheckpointError(
        f"output_path {output_path} holds the messages committed by another run "
        f"({committed.run}); an incremental run must write a new file each run: template "
        "output_path with {{ run_id }} or {{ ts_nodash }}"
    )
