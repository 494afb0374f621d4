"""Skip-unchanged: decide whether a local file already sits in the bucket, by size and checksum.

A file is unchanged when the stored object has the same size and the same content checksum.
Stores report checksums differently: a whole-object MD5 (GCS, Azure single puts, LOCAL, S3
single-part ETags), a whole-object CRC-64/NVME (Azure blobs sent in blocks, kept as metadata), or an
S3 multipart ETag (MD5 of the part MD5s, ``-N``), which is recomputed locally for the part size the
uploader uses. When the store gives neither, the file is uploaded again:
never skip on size alone.

What the store holds is learned from listings, not a request per file: :class:`StoreIndex` lists
each folder prefix of the batch once (paged by the provider) and keeps only the planned keys, so
50,000 unchanged files cost ~50 LIST requests instead of 50,000 HEADs. Keys at the bucket's root
are few in practice and are asked for one by one rather than listing a whole bucket. A store that
declares it cannot list (``cannot = {"list": ...}``: ml-core-service signs URLs and lists nothing) is
asked key by key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from .checksums import file_crc64
from .cloud_storage.capabilities import Multipart
from .errors import ProviderNotInstalledError
from .source import SourceFile, file_md5, read_small

ROOT_KEYS_BY_STAT = 100  # more root-level keys than this: list the bucket instead of a HEAD each


def multipart_etag(path, part_size: int) -> str:
    """The ETag S3 gives an object uploaded in parts of ``part_size`` bytes (plain MD5 if one part)."""
    digests = []
    src = SourceFile(path)
    for block in src.chunks(part_size):
        digests.append(hashlib.md5(block).digest())
    if len(digests) <= 1:
        return src.md5
    return f"{hashlib.md5(b''.join(digests)).hexdigest()}-{len(digests)}"


def _local_md5(item) -> str:
    if item.size <= 8 * 1024 * 1024:
        return read_small(item.source, item.size)[1]
    return file_md5(item.source)


def same_content(provider, item, info) -> bool:
    """True when ``info`` (what the store holds under ``item.key``) is this very file."""
    if info is None or info.size != item.size:
        return False
    md5 = provider.stored_md5(info)
    if md5:
        return _local_md5(item) == md5
    if info.crc64:
        try:
            return file_crc64(item.source) == info.crc64
        except ProviderNotInstalledError:  # no awscrt here: cannot tell, so the file is sent again
            return False
    etag = (info.etag or "").strip('"')
    part_size = provider.part_size_for(item.size) if provider.can(Multipart) else None
    if etag and "-" not in etag and len(etag) == 32:
        return _local_md5(item) == etag
    if etag and part_size:
        return multipart_etag(item.source, part_size) == etag
    return False


def is_unchanged(provider, item) -> bool:
    """One file, asked of the store directly (a HEAD)."""
    return same_content(provider, item, provider.stat(item.key))


class StoreIndex:
    """What a store holds under the batch's keys, from one paged listing per folder prefix."""

    def __init__(self, provider, items: Iterable) -> None:
        self.provider = provider
        wanted = {i.key for i in items}
        self._info: dict[str, object] = {}
        folders = sorted({k.rsplit("/", 1)[0] + "/" for k in wanted if "/" in k})
        prefixes: list[str] = []
        for folder in folders:  # a folder inside one already listed is covered by that listing
            if not prefixes or not folder.startswith(prefixes[-1]):
                prefixes.append(folder)
        root = [k for k in wanted if "/" not in k]
        if "list" in type(provider).cannot:  # declared: no listing at all, one stat per key
            prefixes, root = [], sorted(wanted)
        elif len(root) > ROOT_KEYS_BY_STAT:
            prefixes, root = [""], []
        for prefix in prefixes:
            for info in provider.list(prefix):
                if info.key in wanted:
                    self._info[info.key] = info
        for key in root:
            info = provider.stat(key)
            if info is not None:
                self._info[key] = info

    def unchanged(self, item) -> bool:
        return same_content(self.provider, item, self._info.get(item.key))
