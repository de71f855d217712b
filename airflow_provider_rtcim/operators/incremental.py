"""An incremental run's commit: begin (before any request), record (each key's bookmark), commit.

The protocol (see :mod:`airflow_provider_rtcim.core.checkpoint` and ``docs/incremental.md``):
:meth:`IncrementalCommit.begin` reads the committed checkpoint, rolls a half-finished commit of
an earlier try forward or back, and refuses what would export data twice (a foreign
checkpoint, another shard layout); a retry of a run that already committed raises
:class:`AlreadyCommitted` with that run's summary. While the run lists,
:meth:`~IncrementalCommit.bookmark` tells where each key starts and
:meth:`~IncrementalCommit.record` keeps where it ended. :meth:`~IncrementalCommit.commit` then
writes a pending checkpoint, publishes the output, and writes the checkpoint: a run that fails
or is killed anywhere commits neither, and the next run finishes or undoes it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_rtcim.core import checkpoint
from airflow_provider_rtcim.operators.output import utcnow
from airflow_provider_rtcim.storage import (
    check_writable,
    checkpoint_layouts,
    file_digest,
    read_bytes_if_exists,
    remove_if_exists,
    remove_stale_temps,
    to_storage_path,
    write_atomically,
)

if TYPE_CHECKING:
    from airflow_provider_rtcim.compat import ObjectStoragePath
    from airflow_provider_rtcim.core.pagination import Listing
    from airflow_provider_rtcim.storage import AtomicFile, HashingWriter


class AlreadyCommitted(Exception):
    """This run's output and checkpoint are already committed (a retry): return its summary."""

    def __init__(self, summary: dict[str, Any]) -> None:
        super().__init__("already committed")
        self.summary = summary


def run_identity(context: Any, task_id: str) -> dict[str, Any]:
    """What names this task run across its tries: dag, run, task and map index (not the try)."""
    ti = context.get("ti") if hasattr(context, "get") else None
    dag = context.get("dag") if hasattr(context, "get") else None
    run_id = context.get("run_id") if hasattr(context, "get") else None
    map_index = getattr(ti, "map_index", None)
    return {
        "dag_id": getattr(ti, "dag_id", None) or getattr(dag, "dag_id", None),
        "run_id": getattr(ti, "run_id", None) or run_id,
        "task_id": getattr(ti, "task_id", None) or task_id,
        "map_index": map_index if isinstance(map_index, int) else -1,
    }


def _read(path: ObjectStoragePath) -> checkpoint.Checkpoint | None:
    data = read_bytes_if_exists(path)
    return None if data is None else checkpoint.loads(data, where=str(path))


def _check_no_other_layout(base: ObjectStoragePath, shard: tuple[int, int] | None) -> None:
    """With no checkpoint of its own, a task refuses to start over while checkpoints of
    another shard layout exist: their conversations would be exported a second time."""
    counts: set[int | None] = set(checkpoint_layouts(base))
    mine = shard[1] if shard is not None else None
    others = counts - {mine}
    if others:
        old = sorted(others, key=lambda c: -1 if c is None else c)[0]
        raise checkpoint.CheckpointError(
            f"this task ({'unsharded' if shard is None else f'shard {shard[0]} of {shard[1]}'}) "
            f"has no checkpoint yet, but {base.parent} holds checkpoints of another shard layout "
            f"({'unsharded' if old is None else f'shard_count={old}'}): starting over would export "
            f"their conversations again. " + checkpoint.reshard_hint(str(base), old, mine)
        )


class IncrementalCommit:
    """One incremental run's checkpoint state: :meth:`begin`, :meth:`record`, :meth:`commit`."""

    def __init__(
        self,
        *,
        target: ObjectStoragePath,
        pending: ObjectStoragePath,
        committed: checkpoint.Checkpoint | None,
        app_id: int,
        shard: tuple[int, int] | None,
        run: dict[str, Any],
        log: Any,
    ) -> None:
        self.target = target
        self.pending = pending
        self.app_id = app_id
        self.shard = shard
        self.run = run
        self.log = log
        self.generation = committed.generation if committed is not None else 0
        self.bookmarks: dict[int, checkpoint.Bookmark] = dict(committed.bookmarks) if committed else {}
        self.updates: dict[int, checkpoint.Bookmark] = {}
        self.changed = 0

    @classmethod
    def begin(
        cls,
        *,
        checkpoint_path: Any,
        output_path: Any,
        app_id: int,
        shard: tuple[int, int] | None,
        context: Any,
        task_id: str,
        log: Any,
    ) -> IncrementalCommit:
        """Read the checkpoint (before any request); recover an earlier try's half commit.

        :raises AlreadyCommitted: this run committed already (a retry): nothing to do.
        :raises checkpoint.CheckpointError: a checkpoint that cannot be continued (a ValueError).
        """
        base = to_storage_path(checkpoint_path, field="checkpoint_path")
        target = base.parent / checkpoint.shard_name(base.name, shard)
        pending = target.parent / checkpoint.pending_name(target.name)
        check_writable(target, field="checkpoint_path")  # a missing bucket, refused keys: fail now
        output = str(to_storage_path(output_path))
        committed = _read(target)
        if committed is not None:
            checkpoint.check_compatible(
                committed, where=str(target), app_id=app_id, shard=shard, base=str(base)
            )
            if committed.state != "committed":
                raise checkpoint.CheckpointError(f"checkpoint {target} is marked {committed.state!r}")
        else:
            _check_no_other_layout(base, shard)
        leftover = _read(pending)
        if leftover is not None:
            checkpoint.check_compatible(
                leftover, where=str(pending), app_id=app_id, shard=shard, base=str(base)
            )
        published: bool | None = None
        if leftover is not None and leftover.output is not None:
            digest = file_digest(to_storage_path(leftover.output["path"], field="the pending output"))
            recorded = (leftover.output["bytes"], leftover.output["sha256"])
            published = False if digest is None else True if digest == recorded else None
        decision = checkpoint.recover(committed, leftover, published, where=str(pending))
        if decision.action == "roll_forward":
            assert leftover is not None
            log.warning(
                "Found the pending checkpoint %s of a run that died after publishing: %s",
                pending,
                decision.reason,
            )
            committed = leftover.as_committed()
            write_atomically(target, checkpoint.dumps(committed), field="checkpoint_path")
            remove_if_exists(pending)
        elif decision.action in ("roll_back", "stale"):
            log.warning("Removing the pending checkpoint %s: %s", pending, decision.reason)
            remove_if_exists(pending)
            if decision.action == "roll_back" and leftover is not None and leftover.output is not None:
                remove_stale_temps(to_storage_path(leftover.output["path"], field="the pending output"))
        if committed is not None and committed.output is not None:  # a try killed mid-rename
            remove_stale_temps(to_storage_path(committed.output["path"], field="the committed output"))
        run = run_identity(context, task_id)
        if checkpoint.retry_decision(committed, output_path=output, run=run):
            assert committed is not None and committed.summary is not None
            raise AlreadyCommitted(dict(committed.summary))
        return cls(
            target=target, pending=pending, committed=committed, app_id=app_id, shard=shard, run=run, log=log
        )

    def describe(self) -> str:
        return (
            f"incremental from {self.target} (generation {self.generation}, {len(self.bookmarks)} bookmarks)"
        )

    def bookmark(self, key: Any) -> checkpoint.Bookmark | None:
        """Where ``key``'s listing starts: its committed bookmark, or None (from the beginning)."""
        return self.bookmarks.get(key)

    def record(self, key: Any, listing: Listing) -> None:
        """Keep where ``key``'s listing ended (on the coordinating thread, in key order)."""
        old = self.bookmarks.get(key)
        last = listing.last_position
        if last is not None and (old is None or old.index is None or last > old.index):
            self.changed += 1
        if listing.skipped:
            self.log.info(
                "conversation_short_id %s: dropped %d messages already taken by an earlier run "
                "(the cursor went back)",
                key,
                listing.skipped,
            )
        self.updates[key] = checkpoint.Bookmark(listing.resume_cursor, last)

    def commit(self, out: AtomicFile, summary: dict[str, Any], writer: HashingWriter) -> None:
        """Pending checkpoint, then the output, then the checkpoint; ``summary`` gains the
        incremental fields (it is the run's return value and the checkpoint keeps it)."""
        generation = self.generation + 1
        shard_index, shard_count = self.shard if self.shard else (None, None)
        summary.update(
            incremental=True,
            checkpoint=str(self.target),
            checkpoint_generation=generation,
            conversations_changed=self.changed,
            shard_index=shard_index,
            shard_count=shard_count,
        )
        state = checkpoint.Checkpoint(
            app_id=self.app_id,
            generation=generation,
            state="pending",
            shard_index=shard_index,
            shard_count=shard_count,
            bookmarks=checkpoint.merge_bookmarks(self.bookmarks, self.updates),
            output={
                "path": summary["path"],
                "count": summary["count"],
                "bytes": writer.size,
                "sha256": writer.hexdigest(),
            },
            run=self.run,
            summary=dict(summary),
            written_at=utcnow(),
        )
        write_atomically(self.pending, checkpoint.dumps(state), field="pending checkpoint")
        out.publish()
        write_atomically(self.target, checkpoint.dumps(state.as_committed()), field="checkpoint_path")
        remove_if_exists(self.pending)
        self.log.info(
            "Committed checkpoint %s generation %d: %d conversations changed, %d bookmarks",
            self.target,
            generation,
            self.changed,
            len(state.bookmarks),
        )


__all__ = ["AlreadyCommitted", "IncrementalCommit", "run_identity"]
