"""Executor side: one partition becomes one newline-delimited JSON object in every store.

The rows' JSON is Spark's own (``to_json``). By default the JVM writes a partition into a local file
and sends the Python worker one record naming it (:mod:`.spool`); :class:`SpooledRows` maps the file and
yields read-only views of it in blocks. Otherwise (``transport="frames"``) the rows arrive as length-prefixed UTF-8 frames
(:func:`.writer.json_lines`) and :class:`FramedRows` joins them into blocks. Both yield :data:`END` only
when the JVM wrote its end-of-data mark: when a stage upstream fails, PySpark closes the input early
and its own deserializer ends the iterator as if the partition were complete. A partition whose input
did not end with the mark is never uploaded; the task fails and its retry writes the key.

The partition is serialized once (optionally gzip), with its MD5, size and row count computed in
the same pass (:class:`Encoded`). Up to :data:`IN_MEMORY` bytes it stays in memory and goes to
every store in one ``put_bytes``. A larger partition streams: the first store that declares
:class:`~ml_analytics.cloud_storage.capabilities.StreamUpload` (the S3 family: a multipart upload)
receives it while it is being serialized (parts go up as they fill, with that provider's retry policy
and per-part checksums; a stream that ends truncated raises inside the upload, which is aborted, and
the key keeps what it held), and for the other stores it spills to
a file in the executor's local folder (``SPARK_LOCAL_DIRS``) sent with their ``put_file``.
Memory stays bounded however large a partition is.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import struct
import tempfile
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator

from pyspark.serializers import Serializer, SpecialLengths

from ..checksums import crc64, crc64_hex
from ..cloud_storage.capabilities import StreamUpload
from ..errors import MLAnalyticsError, StorageError, one_line, redact
from ..transfer import SMALL_FILE
from .shipping import executor_providers

IN_MEMORY = SMALL_FILE  # larger partitions spill to the executor's local disk
BATCH = 1 << 20  # rows are joined into ~1 MiB blocks before hashing / compressing


class _End:
    def __repr__(self) -> str:
        return "END"


END = _End()


class FramedRows(Serializer):
    """Reads ``[length][utf-8 bytes]`` frames into blocks of newline-delimited rows.

    Yields ``(block, rows)`` pairs of about :data:`BATCH` bytes (so the partition function does no
    per-row work), then END only after the JVM's end-of-data mark. A cut-short stream yields no
    END, and the rows after the last full block are dropped.
    """

    def load_stream(self, stream) -> Iterator[tuple[bytes, int] | _End]:
        """Frames are parsed from what the stream has buffered (``peek``), many per call, and only the
        bytes of whole frames are consumed: two reads per row cost the Python worker more CPU than
        anything else it did. Nothing past the end-of-data mark is ever read (the worker's protocol
        goes on after it on the same stream)."""
        peek = getattr(stream, "peek", None)
        if peek is None:  # a plain file-like object (tests): the same frames, read one by one
            yield from self._one_by_one(stream, [], 0)
            return
        read, unpack_from = stream.read, struct.Struct("!i").unpack_from
        block: list[bytes] = []
        held = 0
        while True:
            data = peek(1)
            size, pos = len(data), 0
            if not size:
                return  # the stream was cut: no END
            while pos + 4 <= size:
                (n,) = unpack_from(data, pos)
                if n < 0:
                    if n == SpecialLengths.END_OF_DATA_SECTION:
                        read(pos + 4)
                        if block:
                            yield b"\n".join(block) + b"\n", len(block)
                        yield END
                        return
                    pos += 4  # NULL or another marker: not a row
                    continue
                if pos + 4 + n > size:
                    break
                block.append(data[pos + 4:pos + 4 + n])
                held += n
                pos += 4 + n
            if pos:
                read(pos)  # the whole frames just parsed
                if held >= BATCH:
                    yield b"\n".join(block) + b"\n", len(block)
                    block, held = [], 0
                continue
            # a frame larger than what is buffered: read it the plain way
            result = yield from self._one_by_one(stream, block, held, once=True)
            if result is None:
                return
            block, held = result

    def _one_by_one(self, stream, block: list[bytes], held: int, once: bool = False):
        """Frames read one at a time; with ``once``, a single frame, then (block, held) is returned."""
        read, unpack = stream.read, struct.Struct("!i").unpack
        while True:
            head = read(4)
            if len(head) < 4:
                return None  # the stream was cut: no END
            (n,) = unpack(head)
            if n < 0:
                if n == SpecialLengths.END_OF_DATA_SECTION:
                    if block:
                        yield b"\n".join(block) + b"\n", len(block)
                    yield END
                    return None
                if once:
                    return block, held
                continue  # NULL or another marker: not a row
            row = read(n)
            if len(row) < n:
                return None
            block.append(row)
            held += n
            if held >= BATCH:
                yield b"\n".join(block) + b"\n", len(block)
                block, held = [], 0
            if once:
                return block, held

    def dumps(self, obj):  # only ever used to read; satisfy the Serializer interface
        raise NotImplementedError

    def loads(self, obj):
        raise NotImplementedError

    def __repr__(self) -> str:
        return "FramedRows()"


class SpooledRows(Serializer):
    """Reads the JVM's one record for the partition (``PATH<TAB>ROWS<TAB>BYTES``, see :mod:`.spool`) and yields
    the file's content in blocks, then the row count, then END. The record comes only after the JVM
    wrote the whole partition, and END only if the JVM's end-of-data mark followed it and the file
    holds the bytes the JVM wrote. The file is the task's: it is removed here once mapped (and by the
    JVM when the task ends).

    The blocks are read-only views of the file mapped into memory, not copies: the uploads hash and
    send them from the page cache. Reading the file into ``bytes`` blocks instead cost the Python
    worker twice the CPU of the whole upload (measured: 0.07 vs 0.03 CPU s per 64 MiB partition on
    the two-worker cluster). The mapping lives as long as a view of it does."""

    BLOCK = 8 << 20  # view size; Encoded and the uploads regroup blocks as they need

    def load_stream(self, stream) -> Iterator[tuple[bytes | memoryview, int] | _End]:
        read, unpack = stream.read, struct.Struct("!i").unpack
        spooled = None
        while True:
            head = read(4)
            if len(head) < 4:
                return  # the stream was cut: no END
            (n,) = unpack(head)
            if n == SpecialLengths.END_OF_DATA_SECTION:
                break
            if n < 0:
                continue
            record = read(n)
            if len(record) < n:
                return
            spooled = record.decode("utf-8").rsplit("\t", 2)
        if spooled is None:  # an empty partition still sends its record; none means the JVM side failed
            return
        path, rows, size = spooled[0], int(spooled[1]), int(spooled[2])
        try:
            view = self._mapped(path)
        finally:
            try:
                os.unlink(path)  # a mapping outlives its file's name
            except OSError:
                pass
        if len(view) != size:
            return  # the file is not what the JVM wrote: no END
        for offset in range(0, size, self.BLOCK):
            yield view[offset:offset + self.BLOCK], 0
        del view
        yield b"", rows
        yield END

    @staticmethod
    def _mapped(path: str) -> memoryview:
        with open(path, "rb") as fh:
            if os.fstat(fh.fileno()).st_size == 0:
                return memoryview(b"")  # an empty file cannot be mapped
            return memoryview(mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ))

    def dumps(self, obj):
        raise NotImplementedError

    def loads(self, obj):
        raise NotImplementedError

    def __repr__(self) -> str:
        return "SpooledRows()"


class TruncatedInput(MLAnalyticsError):
    """The partition's input ended without the JVM's end-of-data mark (an upstream failure)."""


class Spool:
    """An object's bytes kept for the stores that upload after serialization: in memory up to
    ``limit``, then in a file under ``folder`` (the executor's local disk)."""

    def __init__(self, limit: int = IN_MEMORY, folder: str | None = None):
        self.limit, self.folder = limit, folder
        self.size = 0
        self.blocks: list[bytes] | None = []
        self.file = None

    def write(self, data: bytes) -> None:
        if not data:
            return
        self.size += len(data)
        if self.file is None and self.size > self.limit:
            self.file = tempfile.NamedTemporaryFile(prefix="ml-analytics-part-", dir=self.folder, delete=False)
            for block in self.blocks:
                self.file.write(block)
            self.blocks = None
        if self.file is None:
            self.blocks.append(data)
        else:
            self.file.write(data)

    def finish(self) -> bytes | str:
        """The bytes (small) or the spill file's path (large)."""
        if self.file is None:
            return b"".join(self.blocks)
        self.file.close()
        return self.file.name

    def discard(self) -> None:
        if self.file is not None:
            self.file.close()
            try:
                os.unlink(self.file.name)
            except OSError:
                pass


def local_folder() -> str | None:
    """The executor's scratch folder (Spark sets SPARK_LOCAL_DIRS for Python workers)."""
    dirs = [d for d in os.environ.get("SPARK_LOCAL_DIRS", "").split(",") if d and os.path.isdir(d)]
    return dirs[0] if dirs else None


class Encoded:
    """The object's bytes as they are produced from FramedRows' blocks (gzip if asked), with the
    CRC-64/NVME, size and row count kept in the same pass (awscrt: 0.04 ms per MiB; MD5 costs thirty
    times that and is taken only of a partition small enough for one request, see :meth:`md5_of`).
    Iterating raises TruncatedInput at the end when the input did not end with END, so a multipart
    upload fed from it is aborted."""

    def __init__(self, blocks: Iterable, *, gzip_level: int | None):
        self.blocks = iter(blocks)
        self.packer = zlib.compressobj(gzip_level, zlib.DEFLATED, 31) if gzip_level is not None else None
        self.crc = 0
        self.size = 0
        self.rows = 0
        self.ended = False
        self.md5: str | None = None

    @property
    def crc64(self) -> str:
        return crc64_hex(self.crc)

    def md5_of(self, payload: bytes) -> str:
        """The MD5 of the whole object, held in memory (a small partition)."""
        self.md5 = hashlib.md5(payload).hexdigest()
        return self.md5

    def _out(self, data: bytes) -> bytes:
        self.crc = crc64(data, self.crc)
        self.size += len(data)
        return data

    def __iter__(self) -> Iterator[bytes]:
        for item in self.blocks:
            if item is END:
                self.ended = True
                break
            block, rows = item
            self.rows += rows
            data = self.packer.compress(block) if self.packer else block
            if data:
                yield self._out(data)
        if not self.ended:
            raise TruncatedInput("the partition's input ended early (an upstream stage failed); nothing uploaded")
        if self.packer and self.rows:
            yield self._out(self.packer.flush())


def serialize(blocks: Iterable, spool: Spool, *, gzip_level: int | None) -> int:
    """Write FramedRows' blocks into ``spool``; return the row count (TruncatedInput without END)."""
    encoded = Encoded(blocks, gzip_level=gzip_level)
    for data in encoded:
        spool.write(data)
    return encoded.rows


def upload_everywhere(providers: dict, key: str, payload: bytes | str, md5: str | None) -> dict:
    """Send one object to every provider (one thread each when several); {section: StoredObject}; raise
    the first failure."""
    def send(provider):
        if isinstance(payload, bytes):
            return provider.put_bytes(payload, key, md5)
        return provider.put_file(payload, key)

    if len(providers) == 1:
        section, provider = next(iter(providers.items()))
        return {section: send(provider)}
    stored: dict[str, object] = {}
    errors: dict[str, BaseException] = {}

    def lane(section, provider):
        try:
            stored[section] = send(provider)
        except BaseException as e:  # noqa: BLE001 (reported below, after every lane ended)
            errors[section] = e

    threads = [threading.Thread(target=lane, args=item, name=f"part-{item[0]}") for item in providers.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise next(iter(errors.values()))
    return {s: stored[s] for s in providers}


def object_key(run_prefix: str, partition: int, task_attempt: int, suffix: str) -> str:
    """A partition's key for one task attempt: ``RUN/part-00007-a123.json``. Every attempt (a retry, a
    speculative copy) writes a key of its own, so none can overwrite another's object; the driver lists
    the successful attempt's key in the manifest and removes the others'."""
    return f"{run_prefix}/part-{partition:05d}-a{task_attempt}{suffix}"


def quiet_zip_rescans() -> None:
    """Stop the Python worker re-reading ``pyspark.zip`` before every task (Python 3.10 and 3.11 only).

    PySpark 3.5's worker calls ``importlib.invalidate_caches()`` before each task. On Python 3.10/3.11
    every zipimporter then re-reads its archive's whole directory (CPython gh-103200; lazy from 3.12
    on): the worker imports pyspark from ``pyspark.zip`` through 13 of them, ~0.08 CPU s per task,
    measured, which for 16 partitions cost more than uploading them. After this, a zipimporter re-reads
    its archive only when the file changed (size, mtime, inode), as 3.12 does on the next import. The
    worker process is reused for later tasks, which keep the saving. Idempotent.
    """
    import sys
    import zipimport

    if sys.version_info[:2] not in ((3, 10), (3, 11)) or getattr(zipimport.zipimporter, "_ml_analytics_quiet", False):
        return
    reread = zipimport.zipimporter.invalidate_caches

    def invalidate_caches(self):
        try:
            st = os.stat(self.archive)
            stamp = (st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev)
        except (OSError, AttributeError, TypeError):
            stamp = None
        if stamp is not None and getattr(self, "_ml_analytics_stamp", None) == stamp:
            return  # the archive is the one already read
        reread(self)
        try:
            self._ml_analytics_stamp = stamp
        except AttributeError:
            pass

    zipimport.zipimporter.invalidate_caches = invalidate_caches
    zipimport.zipimporter._ml_analytics_quiet = True


def partition_writer(data: tuple, run_prefix: str, suffix: str, gzip_level: int | None,
                     hook: Callable[[int, int, str], None] | None = None):
    """The function each task runs over its partition's rows (``mapPartitions``).

    ``hook(partition, attempt, stage)`` is a test seam called at "serialized", "streaming" (a big
    partition's first part is on its way) and "uploaded". It returns one result per provider:
    partition, key, uri, bytes, md5, rows, attempt, the task attempt's id, and the etag the store gave.
    """

    def write(blocks):
        from pyspark import TaskContext

        quiet_zip_rescans()

        ctx = TaskContext.get()
        partition, attempt = ctx.partitionId(), ctx.attemptNumber()
        key = object_key(run_prefix, partition, ctx.taskAttemptId(), suffix)
        mc = spool = None
        stored: dict = {}
        try:
            encoded = Encoded(blocks, gzip_level=gzip_level)
            chunks = iter(encoded)
            head: list[bytes] = []  # the first IN_MEMORY bytes decide: one PUT per store, or a stream
            held = 0
            for chunk in chunks:
                head.append(chunk)
                held += len(chunk)
                if held > IN_MEMORY:
                    break
            if held <= IN_MEMORY:  # the whole partition, serialized
                if hook:
                    hook(partition, attempt, "serialized")
                if encoded.rows == 0:
                    return []
                mc = executor_providers(data)
                payload = b"".join(head)
                stored = upload_everywhere(mc.providers, key, payload, encoded.md5_of(payload))
            else:
                mc = executor_providers(data)
                providers = mc.providers
                streamer = next((s for s, p in providers.items() if p.can(StreamUpload)), None)
                rest = {s: p for s, p in providers.items() if s != streamer}
                if rest:
                    spool = Spool(folder=local_folder())
                    for chunk in head:
                        spool.write(chunk)

                def feed():
                    yield from head
                    if hook:
                        hook(partition, attempt, "streaming")
                    for chunk in chunks:
                        if spool is not None:
                            spool.write(chunk)
                        yield chunk

                if streamer is not None:  # uploads parts while the rest of the partition is serialized
                    stored[streamer] = providers[streamer].put_stream(feed(), key)
                else:
                    for _ in feed():
                        pass
                head.clear()
                if hook:
                    hook(partition, attempt, "serialized")
                if rest:
                    stored.update(upload_everywhere(rest, key, spool.finish(), None))
            if hook:
                hook(partition, attempt, "uploaded")
            md5 = encoded.md5 or next((o.md5 for o in stored.values() if o.md5), None)  # a spool's, if taken
            return [{"partition": partition, "provider": s, "key": key, "uri": p.uri(key), "bytes": encoded.size,
                     "md5": md5, "crc64nvme": encoded.crc64, "rows": encoded.rows, "attempt": attempt,
                     "task_attempt": ctx.taskAttemptId(), "etag": stored[s].etag if s in stored else None}
                    for s, p in mc.providers.items()]
        except TruncatedInput:
            raise
        except MLAnalyticsError as e:  # already one line naming provider and key; redact anyway
            secrets = mc.secrets if mc is not None else set()
            raise StorageError(f"partition {partition}: {redact(str(e), secrets)}") from None
        except Exception as e:  # a library error: one redacted line, never the config
            secrets = mc.secrets if mc is not None else set()
            raise StorageError(f"partition {partition}: {type(e).__name__}: {redact(one_line(e), secrets)}") from None
        finally:
            if spool is not None:
                spool.discard()

    return write
