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

import logging
import os
import stat
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from . import interrupt
from .errors import LocalFileError, MLAnalyticsError, StorageError, one_line, redact
from .keys import object_key

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PlannedFile:
    source: str | os.PathLike  # the local file (planning gives a str: thousands of Paths cost start-up time)
    key: str
    size: int


@dataclass(slots=True)
class TransferResult:
    provider: str
    key: str
    uri: str | None
    bytes: int
    md5: str | None
    status: str  # "uploaded" | "skipped" | "failed"
    error: str | None = None
    source: str | None = None
    retryable: bool = False  # failed with a transient error: worth a second pass (not in --json)

    def to_dict(self) -> dict:
        return {"provider": self.provider, "key": self.key, "uri": self.uri, "bytes": self.bytes, "md5": self.md5,
                "status": self.status, "error": self.error, "source": self.source}


class Plan(list):
    """Planned uploads (a list of :class:`PlannedFile`) and the special files a folder walk skipped.

    ``skipped`` holds ``(path, key or None, reason)`` for each FIFO, socket, device, dangling link,
    link loop or unreadable file met inside a folder: they are reported and make the run end
    with exit 1, while every regular file is still uploaded.
    """

    def __init__(self, items=(), skipped=()):
        super().__init__(items)
        self.skipped: list[tuple[str, str | None, str]] = list(skipped)


def _special_reason(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "is a FIFO (named pipe), not a regular file"
    if stat.S_ISSOCK(mode):
        return "is a socket, not a regular file"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "is a device, not a regular file"
    return "is not a regular file"


def plan_uploads(paths: Sequence[str | os.PathLike], prefix: str = "", *,
                 follow_symlinks: bool = False) -> Plan:
    """Expand files and folders into planned uploads.

    A path named explicitly must be a readable regular file (or a folder): otherwise nothing is
    planned and one error names it. Inside a folder, special files (FIFO, socket, device,
    dangling link, link loop, unreadable file) are skipped and listed in ``Plan.skipped``; a name
    that makes a bad key, or a link leading outside the folder (not followed unless asked), still
    refuses the whole batch before anything is sent. ``follow_symlinks`` follows links to files
    and folders anywhere, each real folder walked once (a link loop is skipped, not followed).
    """
    from .source import check_regular_file

    planned = Plan()
    problems: list[str] = []

    for raw in paths:
        p = Path(raw)
        if not p.is_dir() or (p.is_symlink() and not follow_symlinks and not str(raw).endswith("/")):
            try:
                planned.append(PlannedFile(p, object_key(prefix, p.name), check_regular_file(p).st_size))
            except MLAnalyticsError as e:
                problems.append(str(e))
            continue
        _walk(os.fspath(p), prefix, follow_symlinks, planned, problems)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise LocalFileError(problems[0] + more)
    keys: dict[str, str | os.PathLike] = {}
    for item in planned:
        if item.key in keys and keys[item.key] != item.source:
            raise LocalFileError(f"{keys[item.key]} and {item.source} would both be stored as '{item.key}'")
        keys[item.key] = item.source
    return planned


def _walk(base: str, prefix: str, follow: bool, planned: Plan, problems: list[str]) -> None:
    """One folder, depth first in name order, with os.scandir (one stat per entry, usually cached)."""
    import errno

    root = Path(base).resolve()
    try:
        top = os.stat(base)
    except OSError as e:
        problems.append(f"{base}: {e.strerror}")
        return
    seen = {(top.st_dev, top.st_ino)}
    stack: list[tuple[str, str]] = [(base, "")]

    def key_for(rel: str) -> str | None:
        try:
            return object_key(prefix, rel)
        except MLAnalyticsError:
            return None

    while stack:
        folder, rel_dir = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as e:
            planned.skipped.append((folder, None, f"cannot list this folder: {e.strerror}"))
            continue
        subfolders: list[tuple[str, str]] = []
        for entry in entries:
            full, rel = entry.path, rel_dir + entry.name
            try:
                link = entry.is_symlink()
                if link and not follow:
                    target = Path(full).resolve()
                    if target.exists() and not target.is_relative_to(root):
                        problems.append(f"{full}: symbolic link leads outside {base} "
                                        "(not followed; pass --follow-symlinks to upload it)")
                        continue
                st = os.stat(full) if link else entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                planned.skipped.append((full, key_for(rel), "dangling symbolic link (its target does not exist)"))
                continue
            except OSError as e:
                reason = "symbolic link loop" if e.errno == errno.ELOOP else e.strerror
                planned.skipped.append((full, key_for(rel), reason))
                continue
            except RuntimeError:  # Path.resolve on a loop (older Pythons)
                planned.skipped.append((full, key_for(rel), "symbolic link loop"))
                continue
            if stat.S_ISREG(st.st_mode):
                if not os.access(full, os.R_OK):
                    planned.skipped.append((full, key_for(rel), "permission denied"))
                    continue
                try:
                    planned.append(PlannedFile(full, object_key(prefix, rel), st.st_size))
                except MLAnalyticsError as e:
                    problems.append(str(e))
            elif stat.S_ISDIR(st.st_mode):
                if link and not follow:
                    continue  # a linked folder inside the tree: its files are reached by their real path
                if (st.st_dev, st.st_ino) in seen:
                    planned.skipped.append((full, key_for(rel), "symbolic link loop (folder already walked)"))
                    continue
                seen.add((st.st_dev, st.st_ino))
                subfolders.append((full, rel + "/"))
            else:
                planned.skipped.append((full, key_for(rel), _special_reason(st.st_mode)))
        stack.extend(reversed(subfolders))


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
        return TransferResult(section, item.key, None, item.size, None, "failed",
                              redact(message, self._secrets_of(provider)), str(item.source),
                              retryable=bool(getattr(exc, "retryable", False)))

    def _secrets_of(self, provider) -> set[str]:
        """Every value to mask in a message about ``provider``: the config's and the provider's own."""
        return self.secrets | set(getattr(provider, "secrets", ()))

    def _not_attempted(self, section: str, provider, item: PlannedFile, breaker: StoreBreaker) -> TransferResult:
        last = breaker.last_error
        last_text = getattr(last, "detail", None) or one_line(last)  # without the provider/key prefix
        return self._failed(section, provider, item, StorageError(  # _failed redacts the whole message
            f"not attempted: the store looks down (the last {breaker.in_a_row} uploads failed after retries; "
            f"last error: {last_text}); re-run with --skip-existing to send what is missing",
            provider=section, key=item.key))

    @staticmethod
    def _skipped(section, provider, item) -> TransferResult | None:
        """Skip-unchanged asked per file (a HEAD): only when the listing could not be had."""
        from .sync import is_unchanged

        return TransferEngine._unchanged(section, provider, item) if is_unchanged(provider, item) else None

    @staticmethod
    def _unchanged(section, provider, item) -> TransferResult:
        return TransferResult(section, item.key, provider.uri(item.key), item.size, None, "skipped", None,
                              str(item.source))

    def _interrupted(self, section: str, provider, item: PlannedFile) -> TransferResult:
        return self._failed(section, provider, item, interrupt.Interrupted(
            "not uploaded: the run was interrupted before this file was sent"))

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
    def _pass(self, section, provider, items, skip_existing, emit, breaker: StoreBreaker) -> None:
        """One pass of a provider's uploads: a fixed set of threads pulling from one queue (no future
        per file). Uploads block in the provider's client (obstore, an SDK) with the GIL released, so
        threads overlap their network waits; measured against obstore's asyncio API, a thread per
        upload in flight costs a quarter less CPU per small file."""
        queue = iter(items)
        lock = threading.Lock()
        width = self.concurrency or provider.default_concurrency

        def worker():
            while True:
                with lock:
                    item = next(queue, None)
                if item is None:
                    return
                if interrupt.requested():
                    emit(self._interrupted(section, provider, item), final=True)
                elif breaker.tripped:
                    emit(self._not_attempted(section, provider, item, breaker), final=True)
                else:
                    emit(self._one(section, provider, item, skip_existing, breaker), final=False)

        threads = [threading.Thread(target=worker, name=f"upload-{section}-{i}")
                   for i in range(min(width, max(1, len(items))))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def _lane(self, section, provider, items, skip_existing, emit) -> None:
        """A provider's whole batch: a first pass, then a second pass for the files that failed
        with a transient error after their own retries (rclone's whole-run retry, for one batch),
        then the provider's end-of-batch clean-up (e.g. S3's sweep of orphaned multipart uploads).
        The second pass runs only while the batch is inside its retry budget ([COMMON] retry_timeout):
        a store that stays down is not waited on twice."""
        started = time.time()
        width = self.concurrency or provider.default_concurrency
        breaker = StoreBreaker(max(16, 2 * width))  # two full waves of uploads failed, nothing succeeded
        first_failures: dict[str, TransferResult] = {}
        lock = threading.Lock()

        def first(result: TransferResult, final: bool) -> None:
            if not final and result.status == "failed" and result.retryable:
                with lock:
                    first_failures[result.key] = result
                return  # held back: the second pass decides
            emit(result)

        todo = items
        if skip_existing:  # one paged listing per folder prefix instead of a HEAD per file
            from .sync import StoreIndex

            try:
                index = StoreIndex(provider, items)
            except Exception as e:
                log.warning("%s: listing for --skip-existing failed, asking per file: %s", section,
                            redact(one_line(e, 200), self._secrets_of(provider)))
            else:
                # Decided here, in one thread: for thousands of unchanged small files a sweep beats
                # handing each to an upload thread (no queue, no GIL hand-offs); only changes go on.
                todo, skip_existing = [], False
                for item in items:
                    try:
                        unchanged = not interrupt.requested() and index.unchanged(item)
                    except Exception:
                        unchanged = False  # the upload will say what is wrong with this file
                    if unchanged:
                        emit(self._unchanged(section, provider, item))
                    else:
                        todo.append(item)
        self._pass(section, provider, todo, skip_existing, first, breaker)
        failed_any_pass = {k for k, r in first_failures.items() if r.bytes > SMALL_FILE}
        again = [i for i in items if i.key in first_failures] if first_failures else []
        policy = getattr(provider, "retry", None)
        budget_left = policy is None or time.time() - started < getattr(policy, "total_timeout", 0)
        if again and not interrupt.requested() and not breaker.tripped and budget_left:
            self.second_pass[section] = len(again)
            breaker.in_a_row = 0
            recovered = 0

            def second(result: TransferResult, final: bool) -> None:
                nonlocal recovered
                if result.status != "failed":
                    with lock:
                        recovered += 1
                emit(result)

            self._pass(section, provider, again, skip_existing, second, breaker)
            self.recovered[section] = recovered
        else:
            for key in first_failures:
                emit(first_failures[key])
        finish = getattr(provider, "finish_batch", None)
        big = [i for i in items if i.size > SMALL_FILE]
        final = self.big_failures.get(section, {})  # big files that failed for good
        reachable = len(final) < len(big) or any(not r.retryable for r in final.values())
        if finish is not None and big and reachable:  # an unreachable store is cleaned up by the next run
            try:  # keys that failed in any pass: their first attempts' uploads are this run's orphans
                finish(big, started, set(final) | failed_any_pass)
            except Exception as e:  # a clean-up courtesy never changes the batch's outcome
                log.warning("%s: end-of-batch clean-up failed: %s", section,
                            redact(one_line(e, 200), self._secrets_of(provider)))

    def run(self, items: Sequence[PlannedFile], *, skip_existing: bool = False,
            on_result: ResultCallback | None = None, keep: bool = True) -> list[TransferResult]:
        """Run every planned upload on every provider; ``on_result`` sees each result as it is final.

        Results are returned in plan order per provider; with ``keep=False`` nothing is held (for
        batches of hundreds of thousands of files, where the caller streams them) and [] is returned.
        """
        results: list[TransferResult] = []
        lock = threading.Lock()
        self.second_pass: dict[str, int] = {}
        self.recovered: dict[str, int] = {}
        self.big_failures: dict[str, dict[str, TransferResult]] = {s: {} for s in self.providers}
        told_errors: list[BaseException] = []

        def emit(result: TransferResult) -> None:
            with lock:
                if result.status == "failed" and result.bytes > SMALL_FILE:
                    self.big_failures[result.provider][result.key] = result
                if keep:
                    results.append(result)
            if on_result:
                try:
                    on_result(result.provider, result)
                except BaseException as e:  # a caller's callback (a closed pipe): the batch still ends,
                    with lock:              # and the caller hears of it below, not a silent lost result
                        told_errors.append(e)

        import gc

        gc_was_enabled = gc.isenabled()
        gc.disable()  # thousands of short-lived objects per second; nothing cyclic is made here
        lanes = []
        for section, provider in self.providers.items():
            lanes.append(threading.Thread(target=self._lane, args=(section, provider, items, skip_existing, emit),
                                          name=f"lane-{section}"))
        for t in lanes:
            t.start()
        try:
            for t in lanes:
                while t.is_alive():  # a timed join lets the main thread take SIGINT/SIGTERM at once
                    t.join(0.2)
        finally:
            if gc_was_enabled:
                gc.enable()
        if told_errors:
            raise told_errors[0]
        if keep:
            order = {item.key: i for i, item in enumerate(items)}
            sections = list(self.providers)
            results.sort(key=lambda r: (sections.index(r.provider), order.get(r.key, 0)))
        return results
