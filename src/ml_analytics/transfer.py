"""The transfer engine: plan a batch of (file, key, provider) uploads and run them concurrently.

* Planning turns command-line paths into ``(local file, object key)`` pairs: a file is stored
  as ``PREFIX/name``, a directory's files as ``PREFIX/path/relative/to/the/directory``. Keys
  follow :func:`ml_analytics.keys.object_key`. Symbolic links that lead outside the directory
  are not followed unless asked.
* Running gives each provider its own lane (so one slow or failing provider does not stall the
  others) with a bounded number of uploads in flight, one client per provider reused for every
  file, small files read once for all providers, and memory for buffers capped.
* Every transfer ends as one :class:`TransferResult` with status ``uploaded``, ``skipped`` or
  ``failed``; one failure never stops the rest of the batch.
"""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import LocalFileError, MLAnalyticsError, StorageError, one_line, redact
from .keys import object_key


@dataclass(frozen=True)
class PlannedFile:
    source: str | os.PathLike  # the local file (planning gives a str: thousands of Paths cost start-up time)
    key: str
    size: int


@dataclass
class TransferResult:
    provider: str
    key: str
    uri: str | None
    bytes: int
    md5: str | None
    status: str  # "uploaded" | "skipped" | "failed"
    error: str | None = None
    source: str | None = None

    def to_dict(self) -> dict:
        return {"provider": self.provider, "key": self.key, "uri": self.uri, "bytes": self.bytes, "md5": self.md5,
                "status": self.status, "error": self.error, "source": self.source}


def plan_uploads(paths: Sequence[str | os.PathLike], prefix: str = "", *,
                 follow_symlinks: bool = False) -> list[PlannedFile]:
    """Expand files and folders into planned uploads.

    Every path is checked before anything is uploaded: if any entry cannot be uploaded (missing,
    a FIFO, a dangling link, a link leading outside its folder, a name that makes a bad key),
    nothing is planned and one error names the culprits, so a batch never half-happens
    because of bad input.
    """
    from .source import check_regular_file

    planned: list[PlannedFile] = []
    problems: list[str] = []

    def add(f: Path, name: str) -> None:
        try:
            planned.append(PlannedFile(f, object_key(prefix, name), check_regular_file(f).st_size))
        except MLAnalyticsError as e:
            problems.append(str(e))

    for raw in paths:
        p = Path(raw)
        if not p.is_dir() or (p.is_symlink() and not follow_symlinks and not str(raw).endswith("/")):
            add(p, p.name)
            continue
        root = p.resolve()
        base = os.fspath(p)
        for dirpath, dirnames, filenames in os.walk(base, followlinks=follow_symlinks):
            dirnames.sort()
            rel_dir = os.path.relpath(dirpath, base)
            for name in sorted(filenames) + sorted(d for d in dirnames if os.path.islink(os.path.join(dirpath, d))):
                full = os.path.join(dirpath, name)
                rel = name if rel_dir == "." else f"{rel_dir}/{name}"
                try:
                    st = os.lstat(full)
                except OSError as e:
                    problems.append(f"{full}: {e.strerror}")
                    continue
                if stat.S_ISREG(st.st_mode):  # the common case: one lstat, no further checks
                    try:
                        planned.append(PlannedFile(full, object_key(prefix, rel), st.st_size))
                    except MLAnalyticsError as e:
                        problems.append(str(e))
                    continue
                if stat.S_ISLNK(st.st_mode) and not follow_symlinks:
                    target = Path(full).resolve()
                    if target.exists() and not target.is_relative_to(root):
                        problems.append(f"{full}: symbolic link leads outside {p} "
                                        "(not followed; pass --follow-symlinks to upload it)")
                        continue
                    if target.is_dir():
                        continue  # a symlinked folder inside the tree: its files are reached by their real path
                elif stat.S_ISDIR(st.st_mode):
                    continue
                add(Path(full), rel)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise LocalFileError(problems[0] + more)
    keys: dict[str, str | os.PathLike] = {}
    for item in planned:
        if item.key in keys and keys[item.key] != item.source:
            raise LocalFileError(f"{keys[item.key]} and {item.source} would both be stored as '{item.key}'")
        keys[item.key] = item.source
    return planned


ResultCallback = Callable[[str, TransferResult], None]

SMALL_FILE = 8 * 1024 * 1024  # read once into memory and shared by every provider
DEFAULT_MEMORY_LIMIT = 256 * 1024 * 1024
READ_CACHE_BYTES = 64 * 1024 * 1024


class ByteBudget:
    """A cap on bytes held in upload buffers at once. ``acquire`` blocks until the bytes fit."""

    def __init__(self, limit: int):
        self.limit = max(1, limit)
        self.used = 0
        self.peak = 0
        self._cond = threading.Condition(threading.Lock())
        self._waiting = 0

    def acquire(self, n: int) -> int:
        n = min(max(n, 0), self.limit)
        with self._cond:
            while self.used + n > self.limit:
                self._waiting += 1
                self._cond.wait()
                self._waiting -= 1
            self.used += n
            if self.used > self.peak:
                self.peak = self.used
        return n

    def release(self, n: int) -> None:
        with self._cond:
            self.used -= n
            if self._waiting:
                self._cond.notify_all()


class ReadCache:
    """Recently read small files, so a fan-out to several providers reads each file once.

    Single-flight: when two lanes ask for the same file at once, one reads and the other waits
    for that read. Entries are evicted oldest first beyond ``limit`` bytes (a lane that comes
    later than that reads the file again).
    """

    def __init__(self, limit: int = READ_CACHE_BYTES, enabled: bool = True):
        self.limit = limit
        self.enabled = enabled
        self._items: dict[str | os.PathLike, tuple[bytes, str]] = {}
        self._pending: dict[str | os.PathLike, list] = {}  # path -> [event, entry, error]
        self._bytes = 0
        self._lock = threading.Lock()

    def read(self, item: PlannedFile) -> tuple[bytes, str]:
        from . import source

        if not self.enabled:
            return source.read_small(item.source, item.size)
        with self._lock:
            hit = self._items.get(item.source)
            if hit is not None:
                return hit
            pending = self._pending.get(item.source)
            owner = pending is None
            if owner:
                pending = self._pending[item.source] = [threading.Event(), None, None]
        if not owner:
            pending[0].wait()
            if pending[2] is not None:
                raise pending[2]
            return pending[1]
        try:
            pending[1] = entry = source.read_small(item.source, item.size)
        except BaseException as e:
            pending[2] = e
            raise
        finally:
            with self._lock:
                self._pending.pop(item.source, None)
                if pending[1] is not None and len(pending[1][0]) <= self.limit:
                    while self._items and self._bytes + len(pending[1][0]) > self.limit:
                        old = next(iter(self._items))
                        self._bytes -= len(self._items.pop(old)[0])
                    self._items[item.source] = pending[1]
                    self._bytes += len(pending[1][0])
            pending[0].set()
        return entry


class StoreBreaker:
    """Stops a lane from grinding through its remaining files against a store that is down.

    Each upload already retries on its own (see :mod:`ml_analytics.retry`). When ``threshold``
    uploads in a row have still failed with a retryable error (unreachable, timed out, 5xx) and
    none succeeded in between, the store is taken to be down and the lane's remaining files fail at
    once as "not attempted", instead of each spending the whole retry budget: against a blackholed
    endpoint that is a minute per wave of uploads, hours for a big batch. Re-running with
    ``--skip-existing`` then sends exactly what is missing.
    """

    def __init__(self, threshold: int):
        self.threshold = threshold
        self.in_a_row = 0
        self.last_error: BaseException | None = None
        self._lock = threading.Lock()

    def record(self, exc: BaseException | None) -> None:
        with self._lock:
            if exc is None or not getattr(exc, "retryable", False):
                self.in_a_row = 0  # the store answered (success, or a definite refusal such as a bad key)
            else:
                self.in_a_row += 1
                self.last_error = exc

    @property
    def tripped(self) -> bool:
        return self.in_a_row >= self.threshold


class TransferEngine:
    """Runs planned uploads against several providers at once.

    Each provider gets its own lane: up to ``concurrency`` uploads in flight (default: the
    provider's ``default_concurrency``), each on its own thread; a slow or failing provider only
    slows its own lane. Each lane has an equal share of ``memory_limit`` for upload
    buffers (small files held in memory, multipart part buffers), so memory stays bounded however
    many files and parts are in flight; a provider whose part buffers would not fit gets fewer parts
    in flight.
    """

    def __init__(self, providers: dict, *, concurrency: int | None = None,
                 memory_limit: int = DEFAULT_MEMORY_LIMIT, secrets: Iterable[str] = (),
                 on_bytes: Callable[[int], None] | None = None):
        if concurrency is not None and concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.providers = providers
        self.concurrency = concurrency
        self.secrets = set(secrets)
        self.on_bytes = on_bytes
        share = max(1, memory_limit // max(1, len(providers)))
        self.budgets = {s: ByteBudget(share) for s in providers}
        self.cache = ReadCache(min(READ_CACHE_BYTES, share), enabled=len(providers) > 1)
        for section, provider in providers.items():
            part = getattr(provider, "part_size", None)
            parts = getattr(provider, "part_concurrency", None)
            if part and parts and part * (parts + 1) > share:
                provider.part_concurrency = max(1, share // part - 1)

    # -- one transfer --------------------------------------------------------------------------------
    def _failed(self, section: str, provider, item: PlannedFile, exc: BaseException) -> TransferResult:
        if isinstance(exc, MLAnalyticsError):
            message = str(exc)
        else:  # a library error we did not map: still one line, still redacted
            message = f"{section}: {type(exc).__name__}: {one_line(exc)}"
        secrets = self.secrets | set(getattr(provider, "secrets", set()))
        return TransferResult(section, item.key, None, item.size, None, "failed", redact(message, secrets),
                              str(item.source))

    def _not_attempted(self, section: str, provider, item: PlannedFile, breaker: StoreBreaker) -> TransferResult:
        last = breaker.last_error
        last_text = getattr(last, "detail", None) or one_line(last)  # without the provider/key prefix
        return self._failed(section, provider, item, StorageError(  # _failed redacts the whole message
            f"not attempted: the store looks down (the last {breaker.in_a_row} uploads failed after retries; "
            f"last error: {last_text}); re-run with --skip-existing to send what is missing",
            provider=section, key=item.key))

    @staticmethod
    def _skipped(section, provider, item) -> TransferResult | None:
        from .sync import is_unchanged

        if is_unchanged(provider, item):
            return TransferResult(section, item.key, provider.uri(item.key), item.size, None, "skipped", None,
                                  str(item.source))
        return None

    def _one(self, section: str, provider, item: PlannedFile, skip_existing: bool,
             breaker: StoreBreaker) -> TransferResult:
        """One file to one provider; every outcome (skipped, uploaded, failed) is told to the breaker."""
        try:
            result = (skip_existing and self._skipped(section, provider, item)) or self._upload(section, provider, item)
        except Exception as e:
            breaker.record(e)
            return self._failed(section, provider, item, e)
        breaker.record(None)
        return result

    def _upload(self, section: str, provider, item: PlannedFile) -> TransferResult:
        budget = self.budgets[section]
        if item.size <= SMALL_FILE:  # the hot path for thousands of small files: read once, one PUT
            held = budget.acquire(item.size)
            try:
                data, md5 = self.cache.read(item)
                stored = provider.put_bytes(data, item.key, md5)
            finally:
                budget.release(held)
            if self.on_bytes:
                self.on_bytes(item.size)
        else:
            from .source import PROGRESS

            PROGRESS.set(self.on_bytes)  # big files report progress block by block as they are read
            held = budget.acquire(provider.buffer_bytes(item.size))
            try:
                stored = provider.put_file(item.source, item.key)
            finally:
                budget.release(held)
        return TransferResult(section, stored.key, stored.uri, stored.bytes, stored.md5, "uploaded", None,
                              str(item.source))

    # -- lanes --------------------------------------------------------------------------------------------
    def _lane(self, section, provider, items, skip_existing, emit) -> None:
        """One provider's uploads: a fixed set of threads pulling from one queue (no future per file).

        Uploads block in the provider's client (obstore, an SDK) with the GIL released, so threads
        overlap their network waits; measured against obstore's asyncio API, a thread per upload
        in flight costs a quarter less CPU per small file.
        """
        queue = iter(items)
        lock = threading.Lock()
        width = self.concurrency or provider.default_concurrency
        breaker = StoreBreaker(max(16, 2 * width))  # two full waves of uploads failed, nothing succeeded

        def worker():
            while True:
                with lock:
                    item = next(queue, None)
                if item is None:
                    return
                if breaker.tripped:
                    emit(self._not_attempted(section, provider, item, breaker))
                else:
                    emit(self._one(section, provider, item, skip_existing, breaker))

        threads = [threading.Thread(target=worker, name=f"upload-{section}-{i}")
                   for i in range(min(width, max(1, len(items))))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def run(self, items: Sequence[PlannedFile], *, skip_existing: bool = False,
            on_result: ResultCallback | None = None) -> list[TransferResult]:
        results: list[TransferResult] = []
        lock = threading.Lock()

        def emit(result: TransferResult) -> None:
            with lock:
                results.append(result)
            if on_result:
                on_result(result.provider, result)

        import gc

        gc_was_enabled = gc.isenabled()
        gc.disable()  # thousands of short-lived objects per second; nothing cyclic is made here
        lanes = []
        for section, provider in self.providers.items():
            lanes.append(threading.Thread(target=self._lane, args=(section, provider, list(items), skip_existing, emit),
                                          name=f"lane-{section}"))
        for t in lanes:
            t.start()
        try:
            for t in lanes:
                t.join()
        finally:
            if gc_was_enabled:
                gc.enable()
        order = {item.key: i for i, item in enumerate(items)}
        sections = list(self.providers)
        results.sort(key=lambda r: (sections.index(r.provider), order.get(r.key, 0)))
        return results
