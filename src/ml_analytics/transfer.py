"""The transfer engine: run a planned batch of (file, key) uploads against several providers at once.

Planning (paths to files and keys) is :mod:`ml_analytics.plan`; this module only runs what was planned.

* Running gives each provider its own lane (so one slow or failing provider does not stall the
  others) with a bounded number of uploads in flight, one client per provider reused for every
  file, small files read once for all providers, and memory for buffers capped.
* Every transfer ends as one :class:`TransferResult` with status ``uploaded``, ``skipped`` or
  ``failed``; one failure never stops the rest of the batch.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from . import interrupt
from .cloud_storage.capabilities import BatchCleanup, Multipart
from .errors import MLAnalyticsError, StorageError, one_line, redact
from .plan import Plan, PlannedFile, plan_uploads  # noqa: F401 (planning is its own module; re-exported)
from .retry import RetryPolicy

log = logging.getLogger(__name__)


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


def _at_most(callback: Callable[[int], None], size: int) -> Callable[[int], None]:
    """``callback`` told of at most ``size`` bytes in all (one file's progress), from any thread."""
    left = size
    lock = threading.Lock()

    def report(n: int) -> None:
        nonlocal left
        with lock:
            n = min(n, left)
            left -= max(n, 0)
        if n > 0:
            callback(n)

    return report


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
                 on_bytes: Callable[[int], None] | None = None, retry: RetryPolicy | None = None):
        if concurrency is not None and concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.providers = providers
        self.concurrency = concurrency
        self.secrets = set(secrets)
        self.on_bytes = on_bytes
        self.retry = retry or RetryPolicy()
        share = max(1, memory_limit // max(1, len(providers)))
        self.budgets = {s: ByteBudget(share) for s in providers}
        self.cache = ReadCache(min(READ_CACHE_BYTES, share), enabled=len(providers) > 1)
        # Parts of one file in flight, per run: what the provider wants, fewer when its buffers would not
        # fit the lane's memory share. Passed to each upload; the providers themselves are not changed.
        self.parts_in_flight: dict[str, int | None] = {}
        for section, provider in providers.items():
            parts = None
            if provider.can(Multipart):
                parts = provider.default_part_concurrency
                part = provider.part_size_for(0)
                if part * (parts + 1) > share:
                    parts = max(1, share // part - 1)
            self.parts_in_flight[section] = parts

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
        return self.secrets | set(provider.secrets)

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
        except (KeyboardInterrupt, SystemExit, GeneratorExit):
            raise
        except BaseException as e:  # noqa: BLE001 (a library panic is a BaseException: still this file's failure)
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

            # big files report progress block by block as they are read, each byte once: a provider that
            # reads a file twice (ML_CORE: its MD5, then the PUT) or again for a renewed URL or a retry
            # counts no more than the file's size
            PROGRESS.set(_at_most(self.on_bytes, item.size) if self.on_bytes else None)
            parts = self.parts_in_flight.get(section)
            held = budget.acquire(provider.buffer_bytes(item.size) if parts is None else
                                  provider.buffer_bytes(item.size, parts))
            try:
                if parts is not None:
                    stored = provider.put_file(item.source, item.key, parts_in_flight=parts)
                else:
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
                try:
                    if interrupt.requested():
                        emit(self._interrupted(section, provider, item), final=True)
                    elif breaker.tripped:
                        emit(self._not_attempted(section, provider, item, breaker), final=True)
                    else:
                        emit(self._one(section, provider, item, skip_existing, breaker), final=False)
                except BaseException as e:  # noqa: BLE001 (never lose a file's result to a failing step)
                    emit(self._failed(section, provider, item, e), final=True)

        threads = [threading.Thread(target=worker, name=f"upload-{section}-{i}")
                   for i in range(min(width, max(1, len(items))))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def _lane(self, section, provider, items, skip_existing, emit) -> None:
        """A provider's whole batch (see :meth:`_passes`), and then the check that every planned file got
        exactly one result: whatever a worker or the lane died of, a file without one gets a failed
        result saying so, so the totals always add up to the plan."""
        emitted: set[str] = set()

        def counted(result: TransferResult) -> None:
            # No lock: keys are unique in a plan and each file is emitted by one thread at a time, so the
            # check only guards the fallback below against a file that did get its result.
            if result.key not in emitted:
                emitted.add(result.key)
                emit(result)

        trouble: BaseException | None = None
        try:
            self._passes(section, provider, items, skip_existing, counted)
        except BaseException as e:  # noqa: BLE001 (reported as the missing files' results below)
            trouble = e
            if isinstance(e, (KeyboardInterrupt, SystemExit)):
                raise
        finally:
            missing = [item for item in items if item.key not in emitted]
            why = f"{type(trouble).__name__}: {one_line(trouble, 200)}" if trouble else "no result was recorded"
            for item in missing:
                counted(self._failed(section, provider, item, StorageError(
                    f"not uploaded: the upload stopped unexpectedly ({why})", provider=section, key=item.key)))

    def _passes(self, section, provider, items, skip_existing, emit) -> None:
        """A first pass, then a second pass for the files that failed with a transient error after their
        own retries (rclone's whole-run retry, for one batch), then the provider's end-of-batch clean-up
        (e.g. S3's sweep of orphaned multipart uploads). The second pass runs only while the batch is
        inside its retry budget ([COMMON] retry_timeout): a store that stays down is not waited on twice."""
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
        budget_left = time.time() - started < self.retry.total_timeout
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
        big = [i for i in items if i.size > SMALL_FILE]
        final = self.big_failures.get(section, {})  # big files that failed for good
        reachable = len(final) < len(big) or any(not r.retryable for r in final.values())
        if provider.can(BatchCleanup) and big and reachable:  # an unreachable store: cleaned up by the next run
            try:  # keys that failed in any pass: their first attempts' uploads are this run's orphans
                provider.finish_batch(big, started, set(final) | failed_any_pass)
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

        lanes = []
        for section, provider in self.providers.items():
            lanes.append(threading.Thread(target=self._lane, args=(section, provider, items, skip_existing, emit),
                                          name=f"lane-{section}"))
        for t in lanes:
            t.start()
        for t in lanes:
            while t.is_alive():  # a timed join lets the main thread take SIGINT/SIGTERM at once
                t.join(0.2)
        if told_errors:
            raise told_errors[0]
        if keep:
            order = {item.key: i for i, item in enumerate(items)}
            sections = list(self.providers)
            results.sort(key=lambda r: (sections.index(r.provider), order.get(r.key, 0)))
        return results
