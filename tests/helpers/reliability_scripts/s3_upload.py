"""Start an atomic write of a large object to S3 and stall mid-upload, in its own process.

Used by ``tests/integration/test_s3.py`` to SIGKILL a write while its multipart upload is
unfinished (a real process death). The connection comes from the environment
(``AIRFLOW_CONN_RTCIM_S3``); the argument is the target URL::

    python s3_upload.py s3://rtcim_s3@bucket/out/big.jsonl

The part size is lowered to S3's minimum (5 MiB) so that a 6 MiB write starts a multipart
upload and sends its first part; then it prints ``UPLOADING`` and sleeps until it is killed.
"""

from __future__ import annotations

import sys
import time


def main() -> None:
    from airflow_provider_rtcim.storage import AtomicFile

    out = AtomicFile.open(sys.argv[1])
    out.tmp.fs.default_block_size = 5 * 2**20
    out.raw.close()  # the probe's handle: reopen with the small part size
    out.raw = out.tmp.fs.open(out.tmp.path, "wb", block_size=5 * 2**20)
    out.raw.write(b"x" * (6 * 2**20))
    out.raw.flush()  # a full part: the multipart upload starts and its first part is sent
    print("UPLOADING", flush=True)
    while True:
        time.sleep(60)


if __name__ == "__main__":
    main()
