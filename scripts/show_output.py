"""Print what the demo synced, and check it against the emulator's own data.

Usage: python scripts/show_output.py OUTPUT_DIR EMULATOR_URL USER_IDS_JSON

Reads the newest JSON Lines file under OUTPUT_DIR, prints per-user counts and a few rows,
and fails (exit 1) unless the file holds exactly the emulator's conversations of every one of
the synced users (a user with no rows counts), each once, and no other user's.
"""

from __future__ import annotations

import gzip
import json
import sys
import urllib.request
from collections import Counter
from pathlib import Path


def _open(path: Path):
    return gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else path.open(encoding="utf-8")


def main(out_dir: str, emulator_url: str, user_ids: list[int]) -> int:
    files = sorted(
        (
            p
            for p in Path(out_dir).rglob("*")
            if p.is_file() and ".jsonl" in p.name and not p.name.startswith(".")
        ),
        key=lambda p: p.stat().st_mtime,
    )
    if not files:
        print(f"no JSON Lines output under {out_dir}", file=sys.stderr)
        return 1
    path = files[-1]
    per_user: Counter[int] = Counter()
    seen: set[tuple[int, int]] = set()
    samples = []
    with _open(path) as fh:
        for line in fh:
            row = json.loads(line)
            key = (row["ParticipantUserId"], row["ConversationShortId"])
            if key in seen:
                print(f"duplicate row {key}", file=sys.stderr)
                return 1
            seen.add(key)
            per_user[row["ParticipantUserId"]] += 1
            if len(samples) < 3:
                samples.append(row)

    print(f"\nSynced file: {path}  ({path.stat().st_size:,} bytes)")
    print(f"{'user':>12} | {'conversations':>13} | {'emulator has':>12}")
    print("-" * 44)
    ok = set(per_user) <= set(user_ids)
    if not ok:
        print(
            f"rows for users that were not synced: {sorted(set(per_user) - set(user_ids))}", file=sys.stderr
        )
    for user in user_ids:
        count = per_user.get(user, 0)
        with urllib.request.urlopen(f"{emulator_url}/_emulator/users/{user}/conversations") as resp:
            truth = json.load(resp)["ConversationInfos"]
        expected = {c["ConversationShortId"] for c in truth}
        got = {cid for (uid, cid) in seen if uid == user}
        ok &= expected == got
        print(f"{user:>12} | {count:>13} | {len(expected):>12}{'' if expected == got else '  MISMATCH'}")
    print(f"{'total':>12} | {sum(per_user.values()):>13} |")
    print("\nFirst rows:")
    for row in samples:
        print("  " + json.dumps(row, ensure_ascii=False)[:200])
    if not ok:
        print("the output does not match the emulator's data", file=sys.stderr)
        return 1
    print("\nEvery conversation of every user is in the file exactly once.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], [int(u) for u in json.loads(sys.argv[3])]))
