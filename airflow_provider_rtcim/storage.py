"""Atomic output to any ``ObjectStoragePath`` (local files, ``s3://``, ``gs://``, ``memory://`` ...).

What every writer of the provider shares: a temporary object next to the target
(``.<name>.<token>.tmp``: hidden, so no reader globbing ``*.jsonl`` picks it up), created
empty first as a writability probe (before any API request), renamed to the final name only
when complete, removed on failure together with the local directories the run created, and
the temporary objects of earlier tries that were killed deleted once a run has published.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import logging
import os
import re
import uuid
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Any

from airflow_provider_rtcim.core.sink import is_templated, temp_name_for

if TYPE_CHECKING:
    from airflow_provider_rtcim.compat import ObjectStoragePath

_LOCAL_PROTOCOLS = frozenset({"", "file", "local"})
_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")

log = logging.getLogger(__name__)


def check_path(value: Any, *, field: str = "output_path", rendered: bool) -> None:
    """Refuse a relative local path (``ValueError`` naming ``field``).

    An Asset URI is derived at parse time from the DAG processor's working directory, the
    file is written relative to the worker's: they need not agree. Unrendered templates are
    checked only when their static start already shows a relative path.
    """
    if not isinstance(value, (str, os.PathLike)):
        return  # None, an ObjectStoragePath (always absolute), or an XComArg
    text = os.fspath(value).strip()
    if not text or _URL_RE.match(text) or text.startswith("/"):
        return
    if not rendered and is_templated(text) and re.match(r"\s*(\{\{|\{%|\{#)", text):
        return  # "{{ var.value.base }}/x.jsonl": only known after templating
    raise ValueError(
        f"{field} must be an absolute path or a URL (file://, s3:// ...), got {text!r}: a "
        "relative path would resolve against the worker's working directory, not the DAG's"
    )


def explain_storage_error(exc: BaseException, value: Any) -> str:
    """What went wrong with an object store, and what to check, in one line (no secret).

    A missing bucket and refused credentials are named as such (s3fs reports them as
    ``FileNotFoundError("The specified bucket does not exist")`` and ``PermissionError:
    Forbidden``), with the connection id form ``s3://conn_id@bucket/...`` when the URL has none.
    """
    text = str(exc) or type(exc).__name__
    url = str(value).strip()
    scheme, sep, rest = url.partition("://")
    no_conn = bool(sep) and scheme not in ("file", "local", "memory") and "@" not in rest.split("/", 1)[0]
    conn_hint = (
        f" (the URL names no connection: Airflow used the default credentials of {scheme}://; "
        f"name one as {scheme}://<conn_id>@{rest})"
        if no_conn
        else ""
    )
    if isinstance(exc, PermissionError):
        return f"{text}: access denied: check the connection's credentials and their rights on it{conn_hint}"
    if isinstance(exc, FileNotFoundError) and "bucket" in text.lower():
        return f"{text}: create the bucket or fix its name{conn_hint}"
    return text


def check_writable(value: Any, *, field: str) -> None:
    """Create and delete an empty temporary object next to ``value`` (``ValueError`` naming
    ``field`` and the path when that fails: a missing bucket, refused credentials ...).

    Run before any API request, so that a path no retry can fix fails the task at once.
    """
    AtomicFile.open(value, field=field).discard()


def to_storage_path(value: Any, *, field: str = "output_path") -> ObjectStoragePath:
    """A rendered path or URL as an ``ObjectStoragePath`` naming a file (``ValueError`` otherwise)."""
    from airflow_provider_rtcim.compat import ObjectStoragePath

    if isinstance(value, str):
        if not value.strip():
            raise ValueError(f"{field} must be a file path or URL, got an empty string")
        if value.rstrip().endswith("/"):
            raise ValueError(f"{field} must name a file, not a directory: {value!r}")
    check_path(value, field=field, rendered=True)
    try:
        target = value if isinstance(value, ObjectStoragePath) else ObjectStoragePath(str(value).strip())
    except Exception as exc:
        raise ValueError(f"{field} {str(value)!r} is not a usable path or URL: {exc}") from exc
    if not target.name:
        raise ValueError(f"{field} {str(value)!r} names no file")
    return target


def open_lines(value: Any, *, field: str) -> Iterator[bytes]:
    """The lines of a (gzip when named ``.gz``) text file at a path or URL, streamed."""
    from airflow_provider_rtcim.compat import iter_lines

    path = to_storage_path(value, field=field)
    try:
        raw = path.open("rb")
    except Exception as exc:
        raise ValueError(
            f"{field} {str(value)!r} cannot be read: {explain_storage_error(exc, value)}"
        ) from exc
    with raw:
        stream: IO[bytes] = gzip.GzipFile(fileobj=raw) if path.name.lower().endswith(".gz") else raw  # type: ignore[assignment]
        try:
            yield from iter_lines(io.BufferedReader(stream) if not hasattr(stream, "readline") else stream)  # type: ignore[arg-type]
        except (OSError, EOFError) as exc:
            raise ValueError(f"{field} {str(value)!r} cannot be read: {exc}") from exc


class AtomicFile:
    """A file written under a temporary name and renamed into place when complete.

    ``AtomicFile.open(path)`` checks the path and creates the empty temporary object (the
    writability probe: it is written and closed, so an object store really stores it;
    ``open()`` alone reaches S3 or GCS only at ``close()``). Then write to :attr:`raw`, and
    :meth:`publish` (rename into place, delete stale temporaries of killed tries) or
    :meth:`discard` (remove the temporary object and the empty directories this run made).
    """

    def __init__(self, target: ObjectStoragePath, tmp: ObjectStoragePath, raw: IO[bytes], created: list[str]):
        self.target = target
        self.tmp = tmp
        self.raw = raw
        self._created = created
        self.published = False

    @classmethod
    def open(cls, value: Any, *, field: str = "output_path") -> AtomicFile:
        target = to_storage_path(value, field=field)
        created: list[str] = []
        tmp: ObjectStoragePath | None = None
        try:
            tmp = target.parent / temp_name_for(target.name, uuid.uuid4().hex[:12])
            if (target.protocol or "") in _LOCAL_PROTOCOLS:
                if target.is_dir():
                    raise ValueError("it is a directory")
                created = _make_parents(target)
            with tmp.fs.open(tmp.path, "wb") as probe:
                probe.write(b"")
            if not tmp.fs.exists(tmp.path):
                raise OSError(f"the temporary object {tmp} was not there after it was written")
            raw = tmp.fs.open(tmp.path, "wb")
        except Exception as exc:
            if tmp is not None:
                with contextlib.suppress(Exception):
                    if tmp.fs.exists(tmp.path):
                        tmp.fs.rm(tmp.path)
            remove_empty_dirs(created)
            raise ValueError(
                f"{field} {str(value)!r} cannot be written: {explain_storage_error(exc, value)}"
            ) from exc
        return cls(target, tmp, raw, created)

    def publish(self) -> None:
        """Rename the (closed) temporary object to the target; then delete stale temporaries."""
        with contextlib.suppress(Exception):
            self.raw.close()
        self.tmp.fs.mv(self.tmp.path, self.target.path)
        self.published = True
        remove_stale_temps(self.target)

    def discard(self) -> None:
        """Remove the temporary object and the empty local directories this run created."""
        if self.published:
            return
        try:
            self.raw.close()
        except Exception:
            log.debug("closing the temporary output failed", exc_info=True)
        try:
            if self.tmp.fs.exists(self.tmp.path):
                self.tmp.fs.rm(self.tmp.path)
        except Exception:
            log.warning("Could not remove the temporary output %s", self.tmp, exc_info=True)
        remove_empty_dirs(self._created)


def write_atomically(value: Any, data: bytes, *, field: str) -> ObjectStoragePath:
    """Write ``data`` to ``value`` atomically (temporary object, then rename); returns the path."""
    out = AtomicFile.open(value, field=field)
    try:
        out.raw.write(data)
        out.raw.close()
        out.publish()
    finally:
        out.discard()
    return out.target


def _make_parents(target: ObjectStoragePath) -> list[str]:
    """Create the target's missing local parent directories; return them, deepest first."""
    fs = target.fs
    missing: list[str] = []
    parent = target.parent.path.rstrip("/")
    while parent and not fs.exists(parent):
        missing.append(parent)
        up = parent.rsplit("/", 1)[0]
        if up == parent:
            break
        parent = up
    fs.makedirs(target.parent.path, exist_ok=True)
    return missing


def remove_empty_dirs(dirs: list[str]) -> None:
    """Remove the directories a run created (deepest first) while they are empty."""
    for directory in dirs:
        try:
            os.rmdir(directory)
        except FileNotFoundError:
            continue
        except OSError:
            break  # not empty (another task writes there) or not ours to remove: stop here
        log.debug("Removed the empty directory %s, created by this run", directory)


def remove_stale_temps(target: ObjectStoragePath) -> None:
    """Delete temporary siblings of ``target`` left by earlier tries that were killed.

    A killed process cannot clean up; its ``.<name>.<token>.tmp`` stays (hidden, so no
    reader mistakes it for output), and on S3 so does the multipart upload it had started
    (invisible in listings, billed until aborted): both are aborted here. Call it once the
    output is published (a retry), or when the output is known to be committed (a later run).
    """
    pattern = f"{target.parent.path.rstrip('/')}/{temp_name_for(target.name, '*')}"
    try:
        for stale in target.fs.glob(pattern):
            target.fs.rm(stale)
            log.info("Removed %s, left behind by an earlier try that was killed", stale)
    except Exception:
        log.warning("Could not look for stale temporary objects next to %s", target, exc_info=True)
    try:
        abort_stale_uploads(target)
    except Exception:
        log.warning("Could not look for unfinished uploads next to %s", target, exc_info=True)


def abort_stale_uploads(target: ObjectStoragePath) -> list[str]:
    """Abort the unfinished S3 multipart uploads of ``target``'s temporary objects; return their keys.

    Only on stores with an S3 API (s3fs); elsewhere nothing to do (GCS and Azure expire
    unfinished uploads by themselves). Lists the uploads under the temporary objects' own
    prefix, so nothing but this target's temporaries is ever touched.
    """
    call = getattr(target.fs, "call_s3", None)
    if call is None or (target.protocol or "") not in ("s3", "s3a"):
        return []
    bucket, _, key = target.path.partition("/")
    directory = key.rpartition("/")[0]
    prefix = f"{directory}/" if directory else ""
    head, _, tail = temp_name_for(target.name, "\0").partition("\0")  # ".<name>." and ".tmp"
    own = re.compile(re.escape(prefix + head) + r"[^/]+" + re.escape(tail))
    request: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix + head}
    aborted: list[str] = []
    for _ in range(1000):  # pages of 1000 uploads: a bound, not a limit anyone reaches
        page = call("list_multipart_uploads", **request)
        for upload in page.get("Uploads", []):
            if own.fullmatch(upload["Key"]):
                call("abort_multipart_upload", Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
                aborted.append(upload["Key"])
                log.info(
                    "Aborted the unfinished upload of %s/%s, left by a try that was killed",
                    bucket,
                    upload["Key"],
                )
        if not page.get("IsTruncated"):
            break
        request.update(KeyMarker=page.get("NextKeyMarker"), UploadIdMarker=page.get("NextUploadIdMarker"))
    return aborted


class HashingWriter:
    """A write-only file wrapper that counts and SHA-256-hashes the bytes going through it."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self._sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self._sha.update(data)
        self.size += len(data)
        return self._raw.write(data)

    def flush(self) -> None:
        self._raw.flush()

    def close(self) -> None:
        self._raw.close()

    @property
    def closed(self) -> bool:
        return bool(getattr(self._raw, "closed", False))

    def writable(self) -> bool:
        return True

    def hexdigest(self) -> str:
        return self._sha.hexdigest()


def file_digest(path: ObjectStoragePath) -> tuple[int, str] | None:
    """``(size, sha256 hex)`` of the object at ``path``, streamed; None when it does not exist."""
    if not path.fs.exists(path.path):
        return None
    sha = hashlib.sha256()
    size = 0
    with path.fs.open(path.path, "rb") as src:
        while chunk := src.read(1024 * 1024):
            sha.update(chunk)
            size += len(chunk)
    return size, sha.hexdigest()


def read_bytes_if_exists(path: ObjectStoragePath) -> bytes | None:
    """The bytes of the object at ``path``, or None when it does not exist."""
    try:
        with path.fs.open(path.path, "rb") as src:
            return src.read()
    except FileNotFoundError:
        return None


def remove_if_exists(path: ObjectStoragePath) -> None:
    with contextlib.suppress(FileNotFoundError):
        if path.fs.exists(path.path):
            path.fs.rm(path.path)


def checkpoint_layouts(base: ObjectStoragePath) -> dict[int | None, list[ObjectStoragePath]]:
    """The checkpoint files beside ``base``, by shard count (None: the unsharded file itself).

    A shard's file is ``base`` with ``.shard-<i>-of-<n>`` before its extension (see
    :func:`~airflow_provider_rtcim.core.checkpoint.shard_name`).
    """
    stem, dot, ext = base.name.rpartition(".")
    if not dot or not stem:
        stem, ext = base.name, ""
    else:
        ext = "." + ext
    own = re.compile(re.escape(stem) + r"\.shard-(\d+)-of-(\d+)" + re.escape(ext))
    parent = base.parent
    layouts: dict[int | None, list[ObjectStoragePath]] = {}
    for found in sorted(base.fs.glob(f"{parent.path.rstrip('/')}/{stem}.shard-*-of-*{ext}")):
        name = found.rsplit("/", 1)[-1]
        match = own.fullmatch(name)
        if match:
            layouts.setdefault(int(match.group(2)), []).append(parent / name)
    if base.fs.exists(base.path):
        layouts.setdefault(None, []).append(base)
    return layouts


def reshard_checkpoints(checkpoint_path: Any, shard_count: int | None) -> list[str]:
    """Carry the bookmarks of one shard layout over to another: merge, split by the new count,
    write the new files (atomically), then delete the old ones. Returns the files written.

    Run it between two syncs (no sync of these checkpoints running). It refuses while a run's
    commit is unfinished (a ``.pending`` file: run one sync with the old layout first) and
    when several old layouts exist. Interrupted, it can simply be run again.
    """
    from airflow_provider_rtcim.core import checkpoint as ck

    if shard_count is not None:
        ck.check_shard(0, shard_count)
    base = to_storage_path(checkpoint_path, field="checkpoint_path")
    layouts = checkpoint_layouts(base)
    new_files = layouts.pop(shard_count, [])
    if not layouts:
        if not new_files:
            raise ValueError(f"no checkpoint to reshard under {base}")
        return []  # already in that layout
    if len(layouts) > 1:
        raise ValueError(
            f"{base.parent} holds checkpoints of several shard layouts ({sorted(map(str, layouts))}): "
            "keep one set (the newest) and delete the others, then run again"
        )
    (old_count, old_files) = next(iter(layouts.items()))
    for path in [*old_files, *new_files]:
        pending = path.parent / ck.pending_name(path.name)
        if pending.fs.exists(pending.path):
            raise ValueError(
                f"{pending} is an unfinished commit: run one sync with shard_count={old_count} "
                "first (it recovers), then reshard"
            )
    old = [ck.loads(read_bytes_if_exists(p) or b"", where=str(p)) for p in old_files]
    origin_gens = sorted((cp.shard_index or 0, cp.generation) for cp in old)
    if new_files:  # a reshard that died between writing the new files and deleting the old ones
        news = [ck.loads(read_bytes_if_exists(p) or b"", where=str(p)) for p in new_files]
        if not all(
            (cp.resharded_from or {}).get("generations") == [list(g) for g in origin_gens] for cp in news
        ):
            raise ValueError(
                f"{base.parent} holds checkpoints for shard_count={old_count} and {shard_count}: "
                "keep one set (the newest) and delete the other, then run again"
            )
    written: list[str] = []
    for cp in ck.reshard(old, shard_count):
        target = base.parent / ck.shard_name(
            base.name, None if shard_count is None else (cp.shard_index or 0, shard_count)
        )
        write_atomically(target, ck.dumps(cp), field="checkpoint_path")
        written.append(str(target))
    for path in old_files:
        remove_if_exists(path)
    return written


__all__ = [
    "AtomicFile",
    "HashingWriter",
    "abort_stale_uploads",
    "check_path",
    "check_writable",
    "checkpoint_layouts",
    "explain_storage_error",
    "file_digest",
    "open_lines",
    "read_bytes_if_exists",
    "remove_if_exists",
    "remove_stale_temps",
    "reshard_checkpoints",
    "to_storage_path",
    "write_atomically",
]
