"""Planning a batch: command-line paths become ``(local file, object key, size)`` triples.

A file is stored as ``PREFIX/name``, a folder's files as ``PREFIX/path/relative/to/the/folder``; keys
follow :func:`ml_analytics.keys.object_key`. The folder walk is one ``scandir`` per folder, depth first
in name order. Symbolic links that lead outside the folder are not followed unless asked; special
files met inside a folder (FIFOs, sockets, devices, dangling links, link loops, unreadable files) are
skipped and reported; a path named explicitly must be a readable regular file.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import LocalFileError, MLAnalyticsError
from .keys import object_key


@dataclass(frozen=True, slots=True)
class PlannedFile:
    source: str | os.PathLike  # the local file (planning gives a str: thousands of Paths cost start-up time)
    key: str
    size: int


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

    A path named explicitly must be a readable regular file (or a folder) with a name that makes a
    valid key: otherwise nothing is planned and one error names it. Inside a folder, special files
    (FIFO, socket, device, dangling link, link loop, unreadable file) and names that cannot be keys
    (a line break in them) are skipped and listed in ``Plan.skipped``; a link leading outside the
    folder (not followed unless asked) still refuses the whole batch before anything is sent. ``follow_symlinks`` follows links to files
    and folders anywhere, each real folder walked once (a link loop is skipped, not followed).
    """
    from .source import check_regular_file

    from .keys import normalize_prefix

    normalize_prefix(prefix)  # a bad prefix (a '..' segment) stops the run before any folder is walked
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
                except MLAnalyticsError as e:  # a line break in a name, say: skipped like a special file
                    planned.skipped.append((full, None, f"name cannot be an object key ({e})"))
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
