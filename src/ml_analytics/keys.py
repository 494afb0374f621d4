"""The one rule for object keys, used by every provider.

The original code joined ``bucketPath`` and ``fileName`` three different ways (``a/b``,
``a + b``, ``os.path.join``), so the same report landed under different keys per cloud.
Here a key is always the non-empty segments of ``bucketPath`` then ``fileName`` joined with
exactly one ``/``: no leading ``/``, no empty segments, no ``.`` segments.
"""

from __future__ import annotations

import re
from functools import lru_cache

from .errors import InvalidKeyError

_DRIVE = re.compile(r"[A-Za-z]:[\\/]")  # C:\x or C:/x; "a:b.json" is an ordinary name
MAX_KEY_BYTES = 1024  # S3, GCS and Azure all cap object names at 1024 bytes of UTF-8.


def _segments(part: str, what: str) -> list[str]:
    if "\x00" in part:
        raise InvalidKeyError(f"{what} {part!r} contains a NUL character")
    if "\n" in part or "\r" in part:
        raise InvalidKeyError(f"{what} {part!r} contains a line break")
    if not part.isprintable() and any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in part):
        raise InvalidKeyError(f"{what} {part!r} contains a control character")
    try:
        part.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidKeyError(f"{what} {part!r} is not valid UTF-8") from None
    segments = [s for s in part.replace("\\", "/").split("/") if s not in ("", ".")]
    if ".." in segments:
        raise InvalidKeyError(f"{what} {part!r} contains a '..' segment")
    return segments


@lru_cache(maxsize=64)
def _prefix_segments(prefix: str) -> tuple[str, ...]:
    """A prefix's segments, checked once however many files are planned under it."""
    return tuple(_segments(prefix, "prefix"))


def object_key(bucket_path: str | None, file_name: str) -> str:
    """Join a prefix and a (relative) file name into an object key, or raise InvalidKeyError."""
    file_name = str(file_name)
    if file_name.startswith(("/", "\\")) or _DRIVE.match(file_name):
        raise InvalidKeyError(f"file name {file_name!r} is absolute; give a name relative to the folder")
    name = _segments(file_name, "file name")
    if not name:
        raise InvalidKeyError(f"file name {file_name!r} is empty")
    key = "/".join((*_prefix_segments(str(bucket_path or "")), *name))
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise InvalidKeyError(f"key {key[:60]!r}… is {len(key.encode())} bytes; stores accept at most {MAX_KEY_BYTES}")
    return key


def normalize_prefix(prefix: str | None) -> str:
    """A listing prefix in key form: segments joined by '/', with a trailing '/' when non-empty."""
    segments = _segments(str(prefix or ""), "prefix")
    return "/".join(segments) + "/" if segments else ""
