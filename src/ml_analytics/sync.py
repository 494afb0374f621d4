"""Skip-unchanged: decide whether a local file already sits in the bucket, by size and checksum.

A file is unchanged when the stored object has the same size and the same content checksum.
Stores report checksums differently: a whole-object MD5 (GCS, Azure, LOCAL, S3 single-part
ETags) or an S3 multipart ETag (MD5 of the part MD5s, ``-N``), which is recomputed locally for
the part size the uploader uses. When the store gives neither, the file is uploaded again:
never skip on size alone.
"""

from __future__ import annotations

import hashlib

from .source import SourceFile, file_md5


def multipart_etag(path, part_size: int) -> str:
    """The ETag S3 gives an object uploaded in parts of ``part_size`` bytes (plain MD5 if one part)."""
    digests = []
    src = SourceFile(path)
    for block in src.chunks(part_size):
        digests.append(hashlib.md5(block).digest())
    if len(digests) <= 1:
        return src.md5
    return f"{hashlib.md5(b''.join(digests)).hexdigest()}-{len(digests)}"


def is_unchanged(provider, item) -> bool:
    info = provider.stat(item.key)
    if info is None or info.size != item.size:
        return False
    md5 = provider.stored_md5(info)
    if md5:
        return file_md5(item.source) == md5
    etag = (info.etag or "").strip('"')
    part_size = provider.part_size_for(item.size)
    if etag and part_size:
        return multipart_etag(item.source, part_size) == etag
    return False
