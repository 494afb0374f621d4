"""Local files: validation, reading, hashing and change detection of files to upload, and the one way
this project replaces a local file of its own (:func:`replace_file`).

Every provider reads its input through :class:`SourceFile`, so every provider refuses the same
bad inputs (missing path, directory, FIFO, dangling symlink, unreadable file) with the same
one-line message, computes the same MD5, and notices a file that changes while it is read
(size or modification time differ before and after): such a file is never stored torn.
"""

from __future__ import annotations

import contextvars
import hashlib
import io
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from . import interrupt
from .errors import IntegrityError, LocalFileError

READ_BLOCK = 8 * 1024 * 1024

# Bytes-read callback for progress display; set per worker by the transfer engine.
PROGRESS: contextvars.ContextVar = contextvars.ContextVar("ml_analytics_progress", default=None)


def progress(n: int) -> None:
    """Tell the progress display that ``n`` more bytes were read (every provider calls this per block)."""
    callback = PROGRESS.get()
    if callback is not None and n:
        callback(n)


@dataclass(frozen=True)
class Fingerprint:
    size: int
    mtime_ns: int
    inode: int


def _fingerprint(st: os.stat_result) -> Fingerprint:
    return Fingerprint(st.st_size, st.st_mtime_ns, st.st_ino)


def check_regular_file(path: str | os.PathLike) -> os.stat_result:
    """Stat ``path`` and refuse anything that is not a readable regular file, naming it."""
    p = str(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        if os.path.islink(p):
            raise LocalFileError(f"{p}: dangling symbolic link (its target does not exist)") from None
        raise LocalFileError(f"{p}: no such file") from None
    except NotADirectoryError:
        raise LocalFileError(f"{p}: a parent of this path is not a directory") from None
    except PermissionError:
        raise LocalFileError(f"{p}: permission denied") from None
    except OSError as e:
        raise LocalFileError(f"{p}: {e.strerror}") from None
    if stat.S_ISDIR(st.st_mode):
        raise LocalFileError(f"{p}: is a directory, expected a file")
    if stat.S_ISFIFO(st.st_mode):
        raise LocalFileError(f"{p}: is a FIFO (named pipe), not a regular file")
    if not stat.S_ISREG(st.st_mode):
        raise LocalFileError(f"{p}: is not a regular file")
    if not os.access(p, os.R_OK):
        raise LocalFileError(f"{p}: permission denied")
    return st


class SourceFile:
    """One local file, checked on construction, read once with its MD5 computed on the way."""

    def __init__(self, path: str | os.PathLike, *, md5: bool = True):
        self.path = Path(path)
        self._hash = md5
        st = check_regular_file(self.path)
        self.size = st.st_size
        self._before = _fingerprint(st)
        self._md5 = hashlib.md5()
        self.bytes_read = 0

    @property
    def md5(self) -> str | None:
        return self._md5.hexdigest() if self._hash else None

    def open(self):
        """The file opened for reading (refusing anything but a regular file, never blocking on one)."""
        return os.fdopen(open_regular(self.path), "rb")

    def _verify_unchanged(self, fh) -> None:
        try:
            now = _fingerprint(os.fstat(fh.fileno()))
            on_disk = _fingerprint(os.stat(self.path))
        except OSError:
            raise IntegrityError(f"{self.path}: file disappeared while it was read") from None
        if now != self._before or on_disk != self._before or self.bytes_read != self._before.size:
            raise IntegrityError(
                f"{self.path}: file changed while it was read ({self._before.size} bytes before, "
                f"{on_disk.size} after, {self.bytes_read} read); not stored")

    def check_unchanged(self) -> None:
        """Raise IntegrityError if the file on disk is no longer the one that was read (size, mtime, inode):
        called right before an upload is committed, after the last read."""
        try:
            on_disk = _fingerprint(os.stat(self.path))
        except OSError:
            raise IntegrityError(f"{self.path}: file disappeared while it was read") from None
        if on_disk != self._before:
            raise IntegrityError(f"{self.path}: file changed while it was read ({self._before.size} bytes before, "
                                 f"{on_disk.size} after); not stored")

    def read_all(self) -> bytes:
        """The whole content (for small files), verified unchanged."""
        with self.open() as fh:
            data = fh.read()
            self.bytes_read = len(data)
            if self._hash:
                self._md5.update(data)
            self._verify_unchanged(fh)
        progress(len(data))
        return data

    def chunks(self, size: int = READ_BLOCK) -> Iterator[bytes]:
        """Yield the content in blocks; raises IntegrityError at the end if the file changed."""
        with self.open() as fh:
            while True:
                interrupt.check()  # Ctrl-C: stop between blocks, the provider aborts its upload
                block = fh.read(size)
                if not block:
                    break
                self.bytes_read += len(block)
                if self.bytes_read > self._before.size:
                    raise IntegrityError(f"{self.path}: file grew while it was read; not stored")
                if self._hash:
                    self._md5.update(block)
                progress(len(block))
                yield block
            self._verify_unchanged(fh)

    def reader(self) -> "_Reader":
        """A file-like object for SDKs that want ``read(n)``: hashes as it goes, checks at EOF."""
        return _Reader(self)


class _Reader(io.RawIOBase):
    def __init__(self, src: SourceFile):
        super().__init__()
        self._src = src
        self._fh = src.open()

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        interrupt.check()
        block = self._fh.read() if n is None or n < 0 else self._fh.read(n)
        if block:
            self._src.bytes_read += len(block)
            if self._src.bytes_read > self._src._before.size:
                raise IntegrityError(f"{self._src.path}: file grew while it was read; not stored")
            if self._src._hash:
                self._src._md5.update(block)
            progress(len(block))
        elif n != 0:
            self._src._verify_unchanged(self._fh)
        return block

    def readinto(self, buffer) -> int:
        block = self.read(len(buffer))
        buffer[: len(block)] = block
        return len(block)

    def close(self) -> None:
        self._fh.close()
        super().close()


def open_regular(path: str | os.PathLike) -> int:
    """Open a file for reading, refusing anything but a regular file without blocking on it.

    Planning checked the path, but it may have been replaced since: opening a FIFO would wait
    forever for a writer, so the open is non-blocking and the type is checked on the open file.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except PermissionError:
        raise LocalFileError(f"{path}: permission denied") from None
    except OSError as e:
        raise LocalFileError(f"{path}: {e.strerror}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        what = "a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a directory" if stat.S_ISDIR(mode) else \
            "not a regular file"
        raise LocalFileError(f"{path}: is {what}, not a regular file (replaced after it was planned?)")
    os.set_blocking(fd, True)
    return fd


def read_small(path: str | os.PathLike, expected_size: int) -> tuple[bytes, str]:
    """Read a small, already-checked file in one go with its MD5: the hot path for many small files.

    Refuses a file whose size differs from what planning saw or that changes while read (its
    modification time or size differ before and after), like :class:`SourceFile`.
    """
    fd = open_regular(path)
    try:
        before = os.fstat(fd)
        data = os.read(fd, expected_size + 1) if expected_size else b""
        while len(data) < before.st_size and len(data) <= expected_size:
            block = os.read(fd, expected_size + 1 - len(data))
            if not block:
                break
            data += block
        after = os.fstat(fd)
    finally:
        os.close(fd)
    if not stat.S_ISREG(before.st_mode):
        raise LocalFileError(f"{path}: is not a regular file")
    if len(data) != expected_size or before.st_size != expected_size or after.st_size != expected_size \
            or before.st_mtime_ns != after.st_mtime_ns:
        raise IntegrityError(f"{path}: file changed while it was read ({expected_size} bytes expected, "
                             f"{len(data)} read); not stored")
    return data, hashlib.md5(data).hexdigest()


def file_md5(path: str | os.PathLike) -> str:
    """MD5 hex digest of a file, read in blocks."""
    src = SourceFile(path)
    for _ in src.chunks():
        pass
    return src.md5


def replace_file(path: str | os.PathLike, text: str, *, mode: int | None = None) -> None:
    """Write ``text`` to ``path`` as a whole: through a temporary created exclusively in the same folder
    (``O_EXCL``, mode 600: a link planted at a temporary name is never followed), renamed over ``path``.
    Readers see the old file or the new one, never a part; nothing is left behind on any failure.
    ``mode`` is set before the rename (``None`` keeps 600, for files that may hold secrets)."""
    import tempfile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
