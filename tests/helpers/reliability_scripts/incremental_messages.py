"""Run one incremental RtcImConversationMessagesOperator sync, in its own process.

Used by ``tests/test_incremental.py`` to SIGKILL a run at a chosen step (a real process
death, not a clean exception). The connection comes from ``AIRFLOW_CONN_RTCIM_DEFAULT``; the
job is one JSON argument::

    python incremental_messages.py '{"conversation_short_id": [...], "output_path": "...",
                                     "checkpoint_path": "...", "run_id": "r1"}'

The test hook (this script only; nothing in the package reads it): ``RTCIM_TEST_STALL`` names
a step at which the run prints ``STALLED <step>`` and then sleeps until it is killed:

* ``listing``: after the first conversation's messages were merged into the output;
* ``pending_writing``: half way through writing the pending checkpoint's temporary object;
* ``pending_written``: the pending checkpoint is in place, the output not yet published;
* ``publish_copied``: the output's rename is half done: on an object store a rename is a copy
  then a delete, and the copy is done (the temporary object is still there);
* ``published``: the output is published, the checkpoint not yet committed;
* ``commit_writing``: half way through writing the checkpoint's temporary object;
* ``committed``: the checkpoint is committed, the pending one not yet deleted.

Prints the summary as JSON on the last line when the run finishes.
"""

from __future__ import annotations

import json
import os
import sys
import time


def _stall(step: str) -> None:
    print(f"STALLED {step}", flush=True)
    while True:
        time.sleep(60)


def _install_stall(step: str) -> None:
    from airflow_provider_rtcim import storage
    from airflow_provider_rtcim.operators import incremental

    commit_class = incremental.IncrementalCommit
    real_write = incremental.write_atomically
    real_publish = storage.AtomicFile.publish
    real_remove = incremental.remove_if_exists

    if step == "listing":
        real_record = commit_class.record

        def record(self, key, listing):  # type: ignore[no-untyped-def]
            real_record(self, key, listing)
            _stall(step)

        commit_class.record = record  # type: ignore[method-assign]

    def write(value, data, *, field):  # type: ignore[no-untyped-def]
        which = "pending" if field == "pending checkpoint" else "commit"
        if step == f"{which}_writing":
            out = storage.AtomicFile.open(value, field=field)
            out.raw.write(data[: len(data) // 2])
            out.raw.flush()
            _stall(step)
        target = real_write(value, data, field=field)
        if which == "pending" and step == "pending_written":
            _stall(step)
        return target

    def publish(self):  # type: ignore[no-untyped-def]
        if step == "publish_copied" and not self.target.name.endswith((".json", ".pending")):
            fs, real_rm, tmp = self.tmp.fs, self.tmp.fs.rm, self.tmp.path

            def rm(path, *args, **kwargs):  # type: ignore[no-untyped-def]
                if path == tmp:
                    _stall(step)
                return real_rm(path, *args, **kwargs)

            fs.rm = rm  # this process only: mv() is copy() then rm()
        real_publish(self)
        if step == "published" and not self.target.name.endswith((".json", ".pending")):
            _stall(step)

    def remove(path):  # type: ignore[no-untyped-def]
        if step == "committed" and path.name.endswith(".pending"):
            _stall(step)
        real_remove(path)

    incremental.write_atomically = write
    storage.AtomicFile.publish = publish  # type: ignore[method-assign]
    incremental.remove_if_exists = remove


def main() -> None:
    job = json.loads(sys.argv[1])
    step = os.environ.get("RTCIM_TEST_STALL")
    if step:
        _install_stall(step)
    from airflow_provider_rtcim.operators.rtcim import RtcImConversationMessagesOperator

    op = RtcImConversationMessagesOperator(
        task_id="messages",
        conversation_short_id=job["conversation_short_id"],
        output_path=job["output_path"],
        checkpoint_path=job["checkpoint_path"],
        max_workers=job.get("max_workers", 2),
        page_size=job.get("page_size", 20),
    )
    print("STARTED", flush=True)
    summary = op.execute({"run_id": job["run_id"]})
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
