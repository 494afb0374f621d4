"""LOCAL: a filesystem object store, the embedded default (no cloud account needed).

An object with key K in bucket B lives at ``ROOT/B/K``. Writes are atomic: the content goes to a
temporary file in the destination folder, is fsynced, then renamed over the final name, and the
folder is fsynced, so a crash never leaves a half-written object under its final name.
"""

from __future__ import annotations

import errno
import os
import shutil
import socket
import stat as stat_module
import uuid
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from pathlib import Path

from ..errors import (AlreadyExistsError, BucketNotFoundError, ConfigError, IntegrityError, ObjectNotFoundError,
                      PermissionDeniedError, StorageError)
from ..keys import object_key
from ..source import SourceFile, file_md5
from .base import CloudProvider, ObjectInfo, Option, ProviderSettings, StoredObject
from .capabilities import CreateOnly, Locatable, PrefixCleanup, ReadBack, StoreLocation

_TMP_PREFIX = ".ml-analytics-tmp-"
_HOST = socket.gethostname().replace("/", "_")
_MD5_XATTR = "user.ml_analytics.md5"
_MTIME_XATTR = "user.ml_analytics.mtime_ns"


class Local(CloudProvider):
    section = "LOCAL"
    description = "A folder on this machine used as an object store (the embedded default)."
    uri_scheme = "file"
    capabilities = frozenset({ReadBack, Locatable, CreateOnly, PrefixCleanup})
    options = (
        Option("root", "folder that holds the buckets", default="./cloud-storage", arg="root"),
        Option("bucket_name", "bucket: a folder under root", default="ml-analytics", arg="bucketName"),
        Option("create_bucket", "create the bucket folder if it is missing", default="true", kind="bool",
               arg="createBucket"),
    )

    def __init__(self, root: str = "./cloud-storage", bucketName: str = "ml-analytics", createBucket: bool = True):  # noqa: N803
        self.root = Path(root).expanduser().resolve()
        self.bucket = bucketName
        if bucketName in ("", ".", "..") or "/" in bucketName or "\\" in bucketName or "\x00" in bucketName:
            raise ConfigError(f"must be one folder name, got {bucketName!r}", section=self.section, key="bucket_name")
        if self.root.exists() and not self.root.is_dir():
            raise ConfigError(f"{self.root} is a file, expected a folder", section=self.section, key="root")
        self.base = self.root / bucketName
        if self.base.exists() and not self.base.is_dir():
            raise ConfigError(f"{self.base} (root/bucket_name) is a file, expected a folder", section=self.section,
                              key="bucket_name")
        self.create_bucket = createBucket
        self._swept: set[Path] = set()

    @property
    def settings(self) -> ProviderSettings:
        """With the root made absolute: the same folder wherever the settings are rebuilt."""
        return ProviderSettings(f"{type(self).__module__}:{type(self).__qualname__}", (),
                                (("root", str(self.root)), ("bucketName", self.bucket),
                                 ("createBucket", self.create_bucket)))

    # -- paths ----------------------------------------------------------------------------------
    def path_of(self, key: str) -> Path:
        return self.base.joinpath(*object_key("", key).split("/"))

    def uri(self, key: str) -> str:
        return self.path_of(key).as_uri()

    def _ensure_bucket(self) -> None:
        if self.base.is_dir():
            return
        if not self.create_bucket:
            raise BucketNotFoundError(f"folder {self.base} does not exist", provider=self.section, bucket=self.bucket)
        try:
            self.base.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise PermissionDeniedError(f"cannot create {self.base}: {e.strerror}", provider=self.section,
                                        bucket=self.bucket) from None

    # -- contract -------------------------------------------------------------------------------
    def put_file(self, path: str | os.PathLike, key: str) -> StoredObject:
        src = SourceFile(path)
        return self._write(key, src.chunks(), lambda: (src.bytes_read, src.md5))

    def put_bytes(self, data: bytes, key: str, md5: str | None = None) -> StoredObject:
        import hashlib

        return self._write(key, [data], lambda: (len(data), md5 or hashlib.md5(data).hexdigest()))

    def _open_folder(self, segments: list[str], key: str) -> int:
        """A descriptor of the folder ``BUCKET/seg/.../seg``, made as needed, every step opened without
        following a symbolic link: a link planted inside the store cannot lead a write outside it."""
        flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
        fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0))
        walked = self.root
        try:
            for seg in [self.bucket, *segments]:
                walked = walked / seg
                try:
                    os.mkdir(seg, 0o777, dir_fd=fd)  # the umask applies
                except FileExistsError:
                    pass
                try:
                    nxt = os.open(seg, flags, dir_fd=fd)
                except OSError as e:
                    if e.errno in (errno.ELOOP, errno.ENOTDIR):
                        raise StorageError(f"{walked} is a symbolic link or a file where a folder of the store "
                                           f"should be; refused (writes stay under {self.base})",
                                           provider=self.section, bucket=self.bucket, key=key) from None
                    raise
                os.close(fd)
                fd = nxt
            return fd
        except BaseException:
            os.close(fd)
            raise

    def put_bytes_new(self, data: bytes, key: str) -> StoredObject:
        """Like put_bytes, but the temporary is hard-linked to the object's name, which fails if it exists."""
        import hashlib

        return self._write(key, [data], lambda: (len(data), hashlib.md5(data).hexdigest()), new=True)

    def abort_uploads_under(self, prefix: str) -> int:
        """Remove every temporary under ``prefix`` whatever its writer (the caller owns the prefix)."""
        folder = self.base.joinpath(*[s for s in self.list_prefix(prefix).split("/") if s])
        removed = 0
        for dirpath, _dirs, files in os.walk(folder):
            for name in files:
                if name.startswith(_TMP_PREFIX):
                    try:
                        os.unlink(os.path.join(dirpath, name))
                        removed += 1
                    except OSError:
                        pass
        return removed

    def _write(self, key: str, blocks: Iterable[bytes], summary, *, new: bool = False) -> StoredObject:
        """Write to a temporary file created exclusively in the object's folder (mode 666 less the umask),
        fsync it, record its MD5, rename it over the object's name (``new``: link it there, which fails if
        the name is taken) and fsync the folder."""
        self._ensure_bucket()
        *folders, name = object_key("", key).split("/")
        dest = self.path_of(key)
        try:
            dfd = self._open_folder(folders, key)
        except OSError as e:
            raise PermissionDeniedError(f"cannot write under {dest.parent}: {e.strerror}", provider=self.section,
                                        bucket=self.bucket, key=key) from None
        try:
            try:
                if stat_module.S_ISDIR(os.stat(name, dir_fd=dfd, follow_symlinks=False).st_mode):
                    raise StorageError(f"a folder already exists where object '{key}' would go",
                                       provider=self.section, bucket=self.bucket, key=key)
            except FileNotFoundError:
                pass
            if dest.parent not in self._swept:
                self._swept.add(dest.parent)
                _remove_stale_temporaries(dfd)
            tmp = f"{_TMP_PREFIX}{os.getpid()}@{_HOST}-{uuid.uuid4().hex[:12]}"
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0),
                             0o666, dir_fd=dfd)
            except OSError as e:
                raise PermissionDeniedError(f"cannot write under {dest.parent}: {e.strerror}", provider=self.section,
                                            bucket=self.bucket, key=key) from None
            try:
                with os.fdopen(fd, "wb") as fh:
                    for block in blocks:
                        fh.write(block)
                    fh.flush()
                    os.fsync(fh.fileno())
                    size, md5 = summary()
                    _set_md5(fh.fileno(), md5)
                    if os.fstat(fh.fileno()).st_size != size:
                        raise IntegrityError("written size differs from bytes read", provider=self.section,
                                             bucket=self.bucket, key=key)
                if new:
                    try:
                        os.link(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd, follow_symlinks=False)
                    except FileExistsError:
                        raise AlreadyExistsError(f"{dest} exists already", provider=self.section, bucket=self.bucket,
                                                 key=key) from None
                    os.unlink(tmp, dir_fd=dfd)
                else:
                    os.replace(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)  # a link at the name is replaced, not followed
            except BaseException:
                try:
                    os.unlink(tmp, dir_fd=dfd)
                except FileNotFoundError:
                    pass
                raise
            try:
                os.fsync(dfd)
            except OSError:
                pass
        finally:
            os.close(dfd)
        return StoredObject(self.section, key, dest.as_uri(), size, md5, etag=md5)

    def stat(self, key: str) -> ObjectInfo | None:
        p = self.path_of(key)
        try:
            st = p.stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not p.is_file():
            return None
        return ObjectInfo(key, st.st_size, last_modified=datetime.fromtimestamp(st.st_mtime, timezone.utc))

    def stored_md5(self, info: ObjectInfo) -> str | None:
        """The MD5 recorded when the object was written (an extended attribute), so skip-unchanged
        never re-reads stored objects; objects written by others are hashed."""
        path = self.path_of(info.key)
        try:
            recorded = os.getxattr(path, _MD5_XATTR).decode("ascii")
            written_at = int(os.getxattr(path, _MTIME_XATTR) or b"0")
            if len(recorded) == 32 and os.stat(path).st_mtime_ns == written_at:
                return recorded
        except (OSError, AttributeError, ValueError):
            pass
        return file_md5(path)  # written by others, or changed since we wrote it

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        if not self.base.is_dir():
            return
        start = self.list_prefix(prefix)
        for dirpath, dirnames, filenames in os.walk(self.base):
            dirnames.sort()
            for name in sorted(filenames):
                if name.startswith(_TMP_PREFIX):
                    continue
                key = Path(dirpath, name).relative_to(self.base).as_posix()
                if key.startswith(start):
                    info = self.stat(key)
                    if info:
                        yield info

    def delete(self, key: str) -> None:
        p = self.path_of(key)
        try:
            p.unlink()
        except FileNotFoundError:
            return
        # remove now-empty parent folders up to the bucket, like an object store has no folders
        parent = p.parent
        while parent != self.base and parent.is_relative_to(self.base):
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent

    def check(self) -> str:
        super().check()
        free = shutil.disk_usage(self.base).free
        return f"folder {self.base} writable ({free // 2**30} GiB free)"

    def get_bytes(self, key: str) -> bytes:
        path = self.path_of(key)
        try:
            return path.read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise ObjectNotFoundError("no such object", provider=self.section, bucket=self.bucket, key=key) from None
        except OSError as e:
            raise StorageError(f"cannot read {path}: {e.strerror}", provider=self.section, bucket=self.bucket,
                               key=key) from None

    def location(self) -> StoreLocation:
        return StoreLocation("file", self.bucket, root=str(self.base))


def _set_md5(fd: int, md5: str) -> None:
    """Record the content's MD5 (and the modification time it belongs to) on the file itself."""
    try:
        os.setxattr(fd, _MD5_XATTR, md5.encode("ascii"))
        os.setxattr(fd, _MTIME_XATTR, str(os.fstat(fd).st_mtime_ns).encode("ascii"))
    except (OSError, AttributeError):  # no extended attributes here: skip-unchanged hashes instead
        pass


def _remove_stale_temporaries(folder_fd: int) -> None:
    """Delete this store's temporary files whose writer is gone (``kill -9`` mid-write).

    Temporaries are named ``.ml-analytics-tmp-PID@HOST-…``: one of this host whose process no
    longer runs is garbage. A live process's temporary (another run writing now), and any other
    host's (a shared folder), are left alone.
    """
    try:
        with os.scandir(folder_fd) as it:
            names = [e.name for e in it if e.name.startswith(_TMP_PREFIX)]
    except OSError:
        return
    for name in names:
        pid_text, _, rest = name[len(_TMP_PREFIX):].partition("@")
        if not rest.startswith(f"{_HOST}-") or not pid_text.isdigit() or _alive(int(pid_text)):
            continue
        try:
            os.unlink(name, dir_fd=folder_fd)
        except OSError:
            pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
