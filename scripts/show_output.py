"""Print what the demo synced, and check it against the emulator's own data.

Usage: python scripts/show_output.py OUTPUT_DIR EMULATOR_URL USER_IDS_JSON

Reads the newest JSON Lines file under OUTPUT_DIR, prints per-user counts and a few rows,
and fails (exit 1) unless the file holds exactly the emulator's conversations of every one of
the synced users (a user with no rows counts), each once, and no other user's.

The example sync lists InboxType 0 (its default). The emulator also keeps some conversations
in other inboxes (about 1 in 9 in inbox 1); the script counts those from the emulator too
(inbox 1, 2, ... up to the first empty one) and says why the file does not hold them.
"""

from __future__ import annotations

import gzip
import json
import sys
import textwrap
import urllib.request
from collections import Counter
from pathlib import Path

SYNCED_INBOX = 0
"""The InboxType the example DAG lists (the operator's default)."""


def _emulator_conversations(emulator_url: str, user: int, inbox_type: int) -> list[dict]:
    url = f"{emulator_url}/_emulator/users/{user}/conversations?inbox_type={inbox_type}"
    with urllib.request.urlopen(url) as resp:
        return json.load(resp)["ConversationInfos"]


def other_inboxes(emulator_url: str, user: int, limit: int = 100) -> dict[int, int]:
    """``{inbox_type: count}`` of the user's conversations outside the synced inbox (to the first empty one)."""
    counts: dict[int, int] = {}
    for inbox in range(SYNCED_INBOX + 1, SYNCED_INBOX + 1 + limit):
        found = len(_emulator_conversations(emulator_url, user, inbox))
        if not found:
            break
        counts[inbox] = found
    return counts


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
    print(f"{'user':>12} | {'synced':>7} | {'emulator, inbox 0':>17} | {'other inboxes':>13}")
    print("-" * 60)
    ok = set(per_user) <= set(user_ids)
    if not ok:
        print(
            f"rows for users that were not synced: {sorted(set(per_user) - set(user_ids))}", file=sys.stderr
        )
    elsewhere: dict[int, int] = Counter()  # inbox -> conversations not synced (all users)
    held: list[int] = []  # per user: every conversation the emulator holds, all inboxes
    for user in user_ids:
        count = per_user.get(user, 0)
        truth = _emulator_conversations(emulator_url, user, SYNCED_INBOX)
        expected = {c["ConversationShortId"] for c in truth}
        got = {cid for (uid, cid) in seen if uid == user}
        ok &= expected == got
        others = other_inboxes(emulator_url, user)
        elsewhere.update(others)
        held.append(len(expected) + sum(others.values()))
        print(
            f"{user:>12} | {count:>7} | {len(expected):>17} | {sum(others.values()):>13}"
            f"{'' if expected == got else '  MISMATCH'}"
        )
    print(f"{'total':>12} | {sum(per_user.values()):>7} |")
    if elsewhere:
        each = (
            f"{held[0]} conversations a user" if len(set(held)) == 1 else f"{min(held)} to {max(held)} a user"
        )
        inboxes = ", ".join(f"{n} in inbox {inbox}" for inbox, n in sorted(elsewhere.items()))
        print()
        print(
            textwrap.fill(
                f"The emulator holds {each} ({sum(held)} in all), but the sync lists InboxType "
                f"{SYNCED_INBOX} only (the operator's default inbox_type): the other {sum(elsewhere.values())} "
                f"({inboxes}) are not in this file. To sync them, add a task per inbox with "
                f"inbox_type={' / '.join(str(inbox) for inbox in sorted(elsewhere))}.",
                width=92,
            )
        )
    print("\nFirst rows:")
    for row in samples:
        print("  " + json.dumps(row, ensure_ascii=False)[:200])
    if not ok:
        print("the output does not match the emulator's data", file=sys.stderr)
        return 1
    print(f"\nEvery conversation of every user in inbox {SYNCED_INBOX} is in the file exactly once.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], [int(u) for u in json.loads(sys.argv[3])]))
