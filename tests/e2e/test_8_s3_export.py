"""``rtcim_im_export`` on a real S3 API: its output and its checkpoints in a bucket of moto's
server (started by the harness; the deployment reaches it through the AWS connection
``rtcim_s3`` set in its environment), read back here with boto3.

For this module only, the Variables ``rtcim_output_base`` and ``rtcim_checkpoint_base`` name
``s3://rtcim_s3@rtcim-e2e/...`` (set through the REST API, restored afterwards: the other
tests read local files). Two manual runs:

1. the conversations, members, messages (and users, where the DAG has that task) files hold
   exactly the emulator's data; each message shard's checkpoint is committed on S3; the bucket
   holds those files and the checkpoints and nothing else (no hidden temporary object), and no
   multipart upload is left unfinished;
2. after messages are added through the emulator's admin API, the next run's message files hold
   exactly those new messages (incremental on S3), the checkpoints move to generation 2, and
   still nothing else is in the bucket.

Skipped, with the reason, when the deployment's venv lacks moto, s3fs or the Amazon provider
(``Deployment.s3_missing``).
"""

from __future__ import annotations

import gzip
import json
from typing import Any

import boto3
import pytest
import requests
from harness import S3_CONN_ID, S3_REGION, wait_for

pytestmark = pytest.mark.timeout(900)

DAG_ID = "rtcim_im_export"
BUCKET = "rtcim-e2e"
OUTPUT = "export"  # the output base's prefix in the bucket
STATE = "state"  # the checkpoint base's
SHARDS = 4  # the DAG's MESSAGE_SHARDS
SKIPPED_BY_DEFAULT = {"export_friends", "export_blacklists"}  # where the DAG has them
VARIABLES = {"rtcim_output_base": OUTPUT, "rtcim_checkpoint_base": STATE}


def url(key: str) -> str:
    return f"s3://{S3_CONN_ID}@{BUCKET}/{key}"


def key_of(path: str) -> str:
    assert path.startswith(url("")), f"{path} is not in the bucket {url('')}"
    return path.removeprefix(url(""))


def canonical(rows: list[dict[str, Any]]) -> list[str]:
    """The rows as a sorted list of JSON texts: equal lists hold the same rows, duplicates too."""
    return sorted(json.dumps(r, sort_keys=True, ensure_ascii=False) for r in rows)


# ---------------------------------------------------------------------------------------------
# the bucket, the Variables, the runs
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def s3(deployment):
    if deployment.s3_endpoint is None:
        pytest.skip(f"no S3 server in this deployment: {deployment.s3_missing}")
    client = boto3.client(
        "s3",
        endpoint_url=deployment.s3_endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # moto accepts any keys
        region_name=S3_REGION,
    )
    client.create_bucket(Bucket=BUCKET)
    return client


def object_keys(s3) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def unfinished_uploads(s3) -> list[str]:
    return sorted(u["Key"] for u in s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []))


def read_rows(s3, path: str) -> list[dict[str, Any]]:
    data = s3.get_object(Bucket=BUCKET, Key=key_of(path))["Body"].read()
    if path.endswith(".gz"):
        data = gzip.decompress(data)
    return [json.loads(line) for line in data.decode("utf-8").splitlines()]


def read_json(s3, key: str) -> dict[str, Any]:
    return json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())


@pytest.fixture(scope="module")
def settled(api):
    """The DAG parsed and unpaused, and no run of it unfinished (test_1 ran it with local files;
    run alone, unpausing creates the latest scheduled run: wait for it before the Variables change)."""
    wait_for(lambda: "dag_id" in (api.get(f"/dags/{DAG_ID}", expect=(200, 404)) or {}), 180, f"{DAG_ID}", 2)
    api.patch(f"/dags/{DAG_ID}", {"is_paused": False})

    def idle():
        runs = api.dag_runs(DAG_ID)
        scheduled = any(r["run_type"] == "scheduled" for r in runs)
        return scheduled and all(r["state"] in ("success", "failed") for r in runs)

    wait_for(idle, 600, f"the scheduled run of {DAG_ID} to finish", 2)


@pytest.fixture(scope="module")
def on_s3(api, s3, settled):
    """The Variables pointing at the bucket for this module; the previous values afterwards."""

    def value(key: str) -> str | None:
        got = api.get(f"/variables/{key}", expect=(200, 404)) or {}
        return got.get("value") if "key" in got else None

    saved = {key: value(key) for key in VARIABLES}
    try:
        for key, prefix in VARIABLES.items():
            body = {"key": key, "value": url(prefix)}
            if saved[key] is None:
                api.post("/variables", body, expect=(200, 201))
            else:
                api.patch(f"/variables/{key}", body)
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                api.request("DELETE", f"/variables/{key}", expect=(204, 404))
            else:
                api.patch(f"/variables/{key}", {"key": key, "value": old})
        assert {key: value(key) for key in VARIABLES} == saved, "the Variables were not restored"


def run_export(api, s3) -> dict[str, Any]:
    """A manual run, to the end: the run, its task states, the summaries of its steps and the
    rows of its conversations file."""
    run_id = api.trigger(DAG_ID)["dag_run_id"]
    run = api.wait_run(DAG_ID, run_id, timeout=600)
    states = {(t["task_id"], t["map_index"]): t["state"] for t in api.task_instances(DAG_ID, run_id)}
    stamp = run["run_after"].replace("-", "").replace(":", "")[:15] + "Z"
    got: dict[str, Any] = {"run": run, "states": states, "dir": f"{OUTPUT}/im_export/synced_at={stamp}"}
    if run["state"] != "success":
        return got  # the first test says which task failed
    for step in ("export_conversations", "publish_members", "publish_messages", "export_users"):
        if (step, -1) in states:
            got[step] = api.xcom(DAG_ID, run_id, step)
    got["shards"] = [api.xcom(DAG_ID, run_id, "export_messages", i) for i in range(SHARDS)]
    got["conversations"] = read_rows(s3, got["export_conversations"]["path"])
    return got


@pytest.fixture(scope="module")
def first(api, s3, on_s3):
    return run_export(api, s3)


@pytest.fixture(scope="module")
def second(api, s3, deployment, first):
    """Two new messages in each of three conversations of the first run's file, then a run."""
    assert first["run"]["state"] == "success"
    sids = list(dict.fromkeys(r["ConversationShortId"] for r in first["conversations"]))
    picked = [sids[0], sids[len(sids) // 2], sids[-1]]
    added = [
        m
        for sid in picked
        for m in deployment.emu("POST", f"/_emulator/conversations/{sid}/messages", {"count": 2})["Messages"]
    ]
    got = run_export(api, s3)
    got["added"] = added
    return got


# ---------------------------------------------------------------------------------------------
# checks shared by both runs
# ---------------------------------------------------------------------------------------------


def check_every_task(run: dict[str, Any]) -> None:
    wrong = {
        ti: s
        for ti, s in run["states"].items()
        if s != ("skipped" if ti[0] in SKIPPED_BY_DEFAULT else "success")
    }
    assert run["run"]["state"] == "success" and not wrong and run["states"], (
        f"{run['run']['dag_run_id']} ({run['run']['state']}): {run['states']}"
    )


def check_full_files(s3, deployment, run: dict[str, Any]) -> None:
    """Conversations, members (and users) are full exports: exactly the emulator's data."""
    base = run["dir"]
    conv = run["export_conversations"]
    assert conv["path"] == url(f"{base}/conversations.jsonl.gz")
    conversations = run["conversations"]
    user_ids = deployment.emulator_info["user_ids"]
    want = [{**c, "ParticipantUserId": uid} for uid in user_ids for c in deployment.truth(uid)]
    assert conversations == want, f"{conv['path']}: {len(conversations)} rows, the emulator {len(want)}"
    assert conv["count"] == len(want)
    sids = list(dict.fromkeys(r["ConversationShortId"] for r in conversations))

    members = run["publish_members"]
    parts = sorted(m for t, m in run["states"] if t == "export_members")
    assert members["paths"] == [url(f"{base}/members/part={i:05d}.jsonl.gz") for i in parts]
    got = [r for p in members["paths"] for r in read_rows(s3, p)]
    truth = [
        p
        for sid in sids
        for p in deployment.emu("GET", f"/_emulator/conversations/{sid}/participants")["Participants"]
    ]
    assert got == truth, f"the members parts hold {len(got)} rows, the emulator {len(truth)}"
    assert members["count"] == len(got)

    if "export_users" in run:  # the DAG's users step (where it has one): each member's profile once
        users = run["export_users"]
        assert users["path"] == url(f"{base}/users.jsonl.gz")
        ids = list(dict.fromkeys(r["ParticipantUserId"] for r in got))
        profiles, missing = [], 0
        for uid in ids:
            r = requests.get(f"{deployment.emulator_info['url']}/_emulator/users/{uid}", timeout=30)
            assert r.status_code in (200, 404), r.text
            if r.status_code == 200:
                profiles.append(r.json())
            else:
                missing += 1
        rows = read_rows(s3, users["path"])
        assert profiles and canonical(rows) == canonical(profiles), (
            f"{users['path']}: {len(rows)} profiles, the emulator {len(profiles)} of {len(ids)} members"
        )
        assert users.get("not_found", missing) == missing


def messages_truth(deployment, sids: list[int]) -> dict[int, list[dict[str, Any]]]:
    return {
        sid: deployment.emu("GET", f"/_emulator/conversations/{sid}/messages")["Messages"] for sid in sids
    }


def check_message_shards(s3, run: dict[str, Any], truth: dict[int, list[dict[str, Any]]]) -> list[dict]:
    """One file a shard, in map order; each conversation's messages whole, in one shard, in
    order. Returns every row."""
    base = run["dir"]
    messages = run["publish_messages"]
    assert messages["paths"] == [url(f"{base}/messages/shard={i:03d}.jsonl.gz") for i in range(SHARDS)]
    assert [s["path"] for s in run["shards"]] == messages["paths"]
    every, seen = [], set()
    for path in messages["paths"]:
        rows = read_rows(s3, path)
        mine = list(dict.fromkeys(r["ConversationShortId"] for r in rows))
        assert not seen & set(mine), f"{path}: a conversation in two shards"
        seen |= set(mine)
        ids = {r["MessageId"] for r in rows}
        assert rows == [m for sid in mine for m in truth[sid] if m["MessageId"] in ids], path
        every += rows
    assert messages["count"] == len(every)
    return every


def check_checkpoints(s3, run: dict[str, Any], generation: int) -> list[str]:
    """Each shard's checkpoint on S3, committed by this run, naming its output. Returns the keys."""
    keys = [f"{STATE}/im_export/checkpoints/messages.shard-{i}-of-{SHARDS}.json" for i in range(SHARDS)]
    for i, key in enumerate(keys):
        cp = read_json(s3, key)
        assert (cp["state"], cp["generation"], cp["shard_index"], cp["shard_count"]) == (
            "committed",
            generation,
            i,
            SHARDS,
        ), key
        assert cp["run"]["run_id"] == run["run"]["dag_run_id"], key
        assert cp["output"]["path"] == run["shards"][i]["path"], key
        assert cp["output"]["count"] == run["shards"][i]["count"], key
        assert run["shards"][i]["checkpoint_generation"] == generation
    return keys


def run_keys(run: dict[str, Any]) -> set[str]:
    paths = [run["export_conversations"]["path"], *run["publish_members"]["paths"]]
    paths += run["publish_messages"]["paths"] + (
        [run["export_users"]["path"]] if "export_users" in run else []
    )
    return {key_of(p) for p in paths}


# ---------------------------------------------------------------------------------------------
# the first run: everything
# ---------------------------------------------------------------------------------------------


def test_the_export_with_s3_output_and_checkpoints_succeeds(first):
    check_every_task(first)


def test_the_first_runs_files_on_s3_hold_exactly_the_emulators_data(s3, deployment, first):
    check_every_task(first)
    check_full_files(s3, deployment, first)
    sids = list(dict.fromkeys(r["ConversationShortId"] for r in first["conversations"]))
    truth = messages_truth(deployment, sids)
    every = check_message_shards(s3, first, truth)
    want = [m for sid in sids for m in truth[sid]]
    assert canonical(every) == canonical(want), f"{len(every)} messages on S3, the emulator {len(want)}"
    assert len(want) > 1000


def test_the_first_run_leaves_its_checkpoints_and_no_temporary_object_or_upload(s3, first):
    check_every_task(first)
    checkpoints = check_checkpoints(s3, first, generation=1)
    assert set(object_keys(s3)) == run_keys(first) | set(checkpoints)
    assert unfinished_uploads(s3) == []


# ---------------------------------------------------------------------------------------------
# the second run: only the new messages
# ---------------------------------------------------------------------------------------------


def test_the_second_run_exports_exactly_the_new_messages(s3, deployment, first, second):
    check_every_task(second)
    assert second["dir"] != first["dir"]
    check_full_files(s3, deployment, second)
    sids = list(dict.fromkeys(r["ConversationShortId"] for r in second["conversations"]))
    truth = messages_truth(deployment, sids)
    every = check_message_shards(s3, second, truth)
    added = {m["MessageId"] for m in second["added"]}
    assert len(added) == 6
    assert sorted(r["MessageId"] for r in every) == sorted(added)
    assert canonical(every) == canonical([m for sid in sids for m in truth[sid] if m["MessageId"] in added])
    assert second["publish_messages"]["count"] == 6


def test_the_second_run_commits_generation_2_and_leaves_nothing_else(s3, first, second):
    check_every_task(second)
    checkpoints = check_checkpoints(s3, second, generation=2)
    assert set(object_keys(s3)) == run_keys(first) | run_keys(second) | set(checkpoints)
    assert unfinished_uploads(s3) == []
