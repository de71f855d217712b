"""A real S3 API for the tests: moto's server on 127.0.0.1 (a free port), and an Airflow AWS
connection pointing at it.

Its fixtures are imported by ``tests/integration/conftest.py``:

- ``s3_server`` (session): the endpoint URL of a ``ThreadedMotoServer`` started once.
- ``s3_store`` (function): a new empty bucket, the connection ``AIRFLOW_CONN_RTCIM_S3``
  (``conn_type`` aws, ``extra.endpoint_url`` the server) set in the environment (so a
  subprocess started by the test inherits it), and boto3 helpers to look at what is there.
  ``s3_store.url("a/b.jsonl")`` is ``s3://rtcim_s3@<bucket>/a/b.jsonl``: the form with a
  connection id, without which Airflow would fall back to anonymous AWS.
- ``s3_auth_server`` (module): a second moto server, in its own process, that checks
  credentials (``INITIAL_NO_AUTH_ACTION_COUNT=0``): any key it does not know is refused
  with 403, what S3 answers to wrong credentials.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

CONN_ID = "rtcim_s3"
REGION = "us-east-1"


def connection_json(endpoint: str, *, key: str = "testing", secret: str = "testing") -> str:  # noqa: S107
    """The ``AIRFLOW_CONN_<ID>`` value of an AWS connection to ``endpoint``."""
    return json.dumps(
        {
            "conn_type": "aws",
            "login": key,
            "password": secret,
            "extra": {"endpoint_url": endpoint, "region_name": REGION},
        }
    )


@dataclass
class S3Store:
    endpoint: str
    bucket: str
    client: Any
    conn_id: str = CONN_ID

    def url(self, key: str = "") -> str:
        return f"s3://{self.conn_id}@{self.bucket}/{key}"

    def object_keys(self, prefix: str = "") -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))

    def read(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def put(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data)

    def uploads(self, prefix: str = "") -> list[str]:
        """The keys of the unfinished multipart uploads."""
        found = self.client.list_multipart_uploads(Bucket=self.bucket, Prefix=prefix)
        return sorted(u["Key"] for u in found.get("Uploads", []))


def _client(endpoint: str, *, key: str = "testing", secret: str = "testing") -> Any:  # noqa: S107
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        region_name=REGION,
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """The endpoint URL of moto's S3 server, on 127.0.0.1 and a free port."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_store(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> S3Store:
    """A new bucket on the moto server, and the ``rtcim_s3`` connection pointing at it."""
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", connection_json(s3_server))
    client = _client(s3_server)
    bucket = f"rtcim-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    return S3Store(endpoint=s3_server, bucket=bucket, client=client)


@pytest.fixture(scope="module")
def s3_auth_server() -> Iterator[str]:
    """A moto server that checks credentials (its own process: moto's auth switch is global)."""
    port = _free_port()
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "0"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto server did not start on {endpoint}") from None
                time.sleep(0.1)
        yield endpoint
    finally:
        proc.terminate()
        proc.wait(timeout=30)
