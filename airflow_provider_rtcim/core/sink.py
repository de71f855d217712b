"""JSON Lines output for listings: row encoding, local spools, the output sink.

Pure Python (no Airflow, no network). The operator uses it to write one JSONL stream
(gzip when the target name ends in ``.gz``) whose rows come from many concurrent
per-key listings, in a deterministic order (keys in input order, each key's rows in API
order), while keeping memory flat: each key's rows go to a local spool file as they arrive,
the spool is closed when its key is done (no file descriptor held while it waits), and the
fan-out engine copies finished spools into the output in key order.

Row format: ``json.dumps(row, ensure_ascii=False, separators=(",", ":"))`` plus ``\\n``,
UTF-8. Python ints are arbitrary precision, so int64 ids stay exact.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import IO, Any
from urllib.parse import urlsplit, urlunsplit

__all__ = [
    "JsonlSink",
    "Spool",
    "encode_row",
    "is_gzip_name",
    "is_templated",
    "output_asset_uri",
    "read_jsonl",
    "remove_orphan_spools",
    "spool_directory",
    "temp_name_for",
]

log = logging.getLogger(__name__)

_COPY_BUFFER = 1024 * 1024  # one merge at a time: a large buffer is cheap there
_SPOOL_BUFFER = 64 * 1024  # one per worker thread: keep it small (16 workers x 1 MiB was 16 MB)
_TEMPLATE_MARKERS = ("{{", "{%", "{#")


def encode_row(row: Mapping[str, Any]) -> bytes:
    """One JSON Lines record: compact JSON, non-ASCII kept as UTF-8, newline-terminated."""
    return (json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


def is_gzip_name(name: str) -> bool:
    """True when the output should be gzip-compressed (the name ends in ``.gz``)."""
    return name.lower().endswith(".gz")


def temp_name_for(final_name: str, token: str) -> str:
    """The temporary object's name next to ``final_name``.

    Hidden (leading dot) and ending in ``.tmp`` so that readers globbing ``*.jsonl`` /
    ``*.jsonl.gz`` or skipping dot-files (Spark, Hive, pandas) never pick it up.
    """
    return f".{final_name}.{token}.tmp"


class JsonlSink:
    """Writes JSON Lines to an open binary file object; gzip-compresses when asked.

    The gzip header is deterministic (``mtime=0``, no file name), so the same rows always
    produce the same bytes. ``close()`` finishes the gzip stream and closes ``raw``.
    """

    def __init__(self, raw: IO[bytes], *, compress: bool = False) -> None:
        self._raw = raw
        self._gz: gzip.GzipFile | None = None
        if compress:
            self._gz = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0)
        self._out: IO[bytes] = self._gz if self._gz is not None else raw  # type: ignore[assignment]
        self.count = 0
        self.closed = False

    def write_row(self, row: Mapping[str, Any]) -> None:
        self._out.write(encode_row(row))
        self.count += 1

    def copy_from(self, src: IO[bytes], rows: int) -> None:
        """Append already-encoded JSONL bytes (a spool) holding ``rows`` records."""
        shutil.copyfileobj(src, self._out, _COPY_BUFFER)
        self.count += rows

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            if self._gz is not None:
                self._gz.close()
        finally:
            self._raw.close()


class Spool:
    """A local temporary file collecting one key's encoded rows.

    Written by one worker thread, closed when the key is done, then read once by the
    merging thread. Closed spools hold no file descriptor.
    """

    def __init__(self, directory: str) -> None:
        fd, self.path = tempfile.mkstemp(prefix="key-", suffix=".jsonl", dir=directory)
        self._file: IO[bytes] | None = os.fdopen(fd, "wb", buffering=_SPOOL_BUFFER)
        self.count = 0

    def write_row(self, row: Mapping[str, Any]) -> None:
        assert self._file is not None, "spool already closed"
        self._file.write(encode_row(row))
        self.count += 1

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def drain_into(self, sink: JsonlSink) -> None:
        """Copy this spool into ``sink`` and delete it."""
        self.close()
        with open(self.path, "rb") as src:
            sink.copy_from(src, self.count)
        self.discard()

    def discard(self) -> None:
        self.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


SPOOL_PREFIX = "rtcim-spool-"
_OWNER_LOCK = ".owner.lock"
# A spool directory without an owner lock (made by a version before the lock, or by a process
# killed while creating it) is removed once nothing in it has changed for this long.
_UNLOCKED_SPOOL_MAX_AGE = 24 * 3600.0


@contextlib.contextmanager
def spool_directory(base: str | None = None) -> Iterator[str]:
    """A fresh local directory for spools (``rtcim-spool-<pid>-...`` in the temp directory).

    The owner holds an exclusive ``flock`` on the directory's ``.owner.lock`` while it lives;
    the kernel releases it when the process dies, however it dies. Before making its own, it
    removes the spool directories of owners that are gone (SIGKILL, OOM kill): see
    :func:`remove_orphan_spools`. A lock, not a pid, says who is alive: pids are reused.
    """
    base = base or tempfile.gettempdir()
    remove_orphan_spools(base)
    path = tempfile.mkdtemp(prefix=f"{SPOOL_PREFIX}{os.getpid()}-", dir=base)
    lock_fd = _lock_owner(path)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        if lock_fd is not None:
            os.close(lock_fd)


def _lock_owner(path: str) -> int | None:
    """Lock ``path/.owner.lock`` for this process; None where ``flock`` does not exist.

    The lock file is made and locked under a private name, then renamed: a sweeper never
    sees it unlocked.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on POSIX: no sweeping either
        return None
    private = os.path.join(path, f"{_OWNER_LOCK}.{os.getpid()}")
    fd = os.open(private, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.rename(private, os.path.join(path, _OWNER_LOCK))
    return fd


def remove_orphan_spools(base: str | None = None, *, now: float | None = None) -> list[str]:
    """Remove the spool directories under ``base`` whose owner process is gone; return them.

    Owned directories are removed when their ``.owner.lock`` can be locked (the owner's lock
    died with it); directories with no lock file, when nothing in them changed for 24 hours.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover
        return []
    base = base or tempfile.gettempdir()
    now = time.time() if now is None else now
    removed: list[str] = []
    try:
        names = [n for n in os.listdir(base) if n.startswith(SPOOL_PREFIX)]
    except OSError:
        return removed
    for name in names:
        path = os.path.join(base, name)
        try:
            fd = os.open(os.path.join(path, _OWNER_LOCK), os.O_RDWR)
        except FileNotFoundError:
            if os.path.isdir(path) and now - _newest_mtime(path) > _UNLOCKED_SPOOL_MAX_AGE:
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
            continue
        except OSError:
            continue  # not ours to look into (another user's)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # its owner is alive
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
        finally:
            os.close(fd)
    for path in removed:
        log.info("Removed the spool directory %s of a process that is gone (killed)", path)
    return removed


def _newest_mtime(path: str) -> float:
    newest = os.stat(path).st_mtime
    with contextlib.suppress(OSError), os.scandir(path) as entries:
        for entry in entries:
            with contextlib.suppress(OSError):
                newest = max(newest, entry.stat(follow_symlinks=False).st_mtime)
    return newest


def read_jsonl(raw: IO[bytes], *, compressed: bool = False) -> Iterable[dict[str, Any]]:
    """Iterate the records of a JSONL stream (handy for tests and downstream tasks)."""
    stream: IO[bytes] = gzip.GzipFile(fileobj=raw, mode="rb") if compressed else raw  # type: ignore[assignment]
    for line in stream:
        if line.strip():
            yield json.loads(line)


def is_templated(value: str) -> bool:
    """True when ``value`` still contains a Jinja expression, statement or comment."""
    return any(marker in value for marker in _TEMPLATE_MARKERS)


_SCHEME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def output_asset_uri(output_path: str) -> str | None:
    """A stable Asset URI for an (un-rendered) output path, or None when none can be derived.

    - A static path is its own Asset: ``s3://bkt/a/x.jsonl.gz``; a local path becomes
      ``file:///abs/path``.
    - A templated path (``s3://bkt/rtcim/{{ ds }}/part-{{ ti.map_index }}.jsonl``) maps to
      the static directory prefix before the first template expression, without the
      trailing slash (``s3://bkt/rtcim``): every run, every mapped task writes under that
      one Asset.
    - A connection id in the URL (``s3://aws_conn@bkt/...``) is not part of the data's
      identity and is dropped.
    - None when the static prefix has no location at all (``{{ var.value.out }}``,
      ``s3://{{ bucket }}/...``): pass ``asset=`` explicitly then.
    """
    text = output_path.strip()
    if not text:
        return None
    if is_templated(text):
        cut = min(i for i in (text.find(m) for m in _TEMPLATE_MARKERS) if i >= 0)
        text = text[:cut]
        slash = text.rfind("/")
        if slash < 0:
            return None
        text = text[: slash + 1]
    if _SCHEME_RE.match(text):
        parts = urlsplit(text)
        netloc = parts.netloc.rpartition("@")[2]
        if parts.scheme != "file" and not netloc:
            return None
        path = parts.path.rstrip("/")
        if parts.scheme == "file" and not path:
            return None  # the file-system root is nobody's data set
        return urlunsplit((parts.scheme, netloc, path, "", ""))
    if not text:
        return None
    absolute = os.path.abspath(os.path.expanduser(text))
    return None if absolute == "/" else "file://" + absolute
