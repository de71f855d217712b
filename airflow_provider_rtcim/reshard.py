"""Carry incremental-sync bookmarks over to another shard count (run between two syncs).

    python -m airflow_provider_rtcim.reshard CHECKPOINT_PATH NEW_SHARD_COUNT

``CHECKPOINT_PATH`` is the operator's ``checkpoint_path`` (the base name, e.g.
``s3://bucket/rtcim/checkpoints/messages.json``); ``NEW_SHARD_COUNT`` is the new
``shard_count``, or ``None`` for one unsharded task. The old files are merged, split by the
new count, written, and then deleted (see
:func:`airflow_provider_rtcim.storage.reshard_checkpoints`).
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] in ("-h", "--help"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    from airflow_provider_rtcim.storage import reshard_checkpoints

    count = None if args[1].strip().lower() == "none" else int(args[1])
    written = reshard_checkpoints(args[0], count)
    for path in written:
        print(path)
    if not written:
        print("already in that layout: nothing to do", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
