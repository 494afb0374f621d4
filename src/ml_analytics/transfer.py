"""The transfer engine: plan a batch of (file, key, provider) uploads and run them concurrently.

* Planning turns command-line paths into ``(local file, object key)`` pairs: a file is stored
  as ``PREFIX/name``, a directory's files as ``PREFIX/path/relative/to/the/directory``. Keys
  follow :func:`ml_analytics.keys.object_key`. Symbolic links that lead outside the directory
  are not followed unless asked.
* Running gives each provider its own pool of workers (so one slow or failing provider does
  not stall the others) with a bounded number of uploads in flight, and one client per
  provider reused for every file.
* Every transfer ends as one :class:`TransferResult` with status ``uploaded``, ``skipped`` or
  ``failed``; one failure never stops the rest of the batch.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path

from .errors import LocalFileError, MLAnalyticsError, one_line, redact
from .keys import object_key

DEFAULT_CONCURRENCY = 16


@dataclass(frozen=True)
class PlannedFile:
    source: Path
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
        return asdict(self)


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
        for dirpath, dirnames, filenames in os.walk(p, followlinks=follow_symlinks):
            dirnames.sort()
            for name in sorted(filenames) + [d for d in dirnames if (Path(dirpath) / d).is_symlink()
                                            and not follow_symlinks]:
                f = Path(dirpath) / name
                if f.is_symlink() and not follow_symlinks and (not f.exists() or not f.resolve().is_relative_to(root)):
                    if f.exists():
                        problems.append(f"{f}: symbolic link leads outside {p} "
                                        "(not followed; pass --follow-symlinks to upload it)")
                        continue
                if f.is_dir():
                    continue  # a symlinked folder inside the tree: its files are reached by their real path
                add(f, f.relative_to(p).as_posix())
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise LocalFileError(problems[0] + more)
    keys: dict[str, Path] = {}
    for item in planned:
        if item.key in keys and keys[item.key] != item.source:
            raise LocalFileError(f"{keys[item.key]} and {item.source} would both be stored as '{item.key}'")
        keys[item.key] = item.source
    return planned


ProgressCallback = Callable[[str, TransferResult], None]


class TransferEngine:
    """Runs planned uploads against several providers at once."""

    def __init__(self, providers: dict, *, concurrency: int = DEFAULT_CONCURRENCY,
                 secrets: Iterable[str] = ()):
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.providers = providers
        self.concurrency = concurrency
        self.secrets = set(secrets)

    def _one(self, section: str, provider, item: PlannedFile, skip_existing: bool) -> TransferResult:
        try:
            if skip_existing:
                from .sync import is_unchanged

                if is_unchanged(provider, item):
                    return TransferResult(section, item.key, provider.uri(item.key), item.size, None, "skipped",
                                          None, str(item.source))
            stored = provider.put_file(item.source, item.key)
            return TransferResult(section, stored.key, stored.uri, stored.bytes, stored.md5, "uploaded", None,
                                  str(item.source))
        except MLAnalyticsError as e:
            message = str(e)
        except Exception as e:  # a library error we did not map: still one line, still redacted
            message = f"{section}: {type(e).__name__}: {one_line(e)}"
        secrets = self.secrets | set(getattr(provider, "secrets", set()))
        return TransferResult(section, item.key, None, item.size, None, "failed", redact(message, secrets),
                              str(item.source))

    def run(self, items: Sequence[PlannedFile], *, skip_existing: bool = False,
            on_result: ProgressCallback | None = None) -> list[TransferResult]:
        results: list[TransferResult] = []
        lock = threading.Lock()
        pools = {s: ThreadPoolExecutor(max_workers=min(self.concurrency, max(1, len(items))),
                                       thread_name_prefix=f"upload-{s}") for s in self.providers}
        try:
            futures = [pools[s].submit(self._one, s, p, item, skip_existing)
                       for s, p in self.providers.items() for item in items]
            for fut in as_completed(futures):
                result = fut.result()
                with lock:
                    results.append(result)
                if on_result:
                    on_result(result.provider, result)
        finally:
            for pool in pools.values():
                pool.shutdown(wait=True, cancel_futures=True)
        order = {(item.key): i for i, item in enumerate(items)}
        sections = list(self.providers)
        results.sort(key=lambda r: (sections.index(r.provider), order.get(r.key, 0)))
        return results
