"""CRC-64/NVME: the CRC Azure Storage verifies per request (``x-ms-content-crc64``), computed by awscrt.

Azure's "Storage CRC64" (polynomial 0x9A6C9329AC4BC9B5 reflected, initial and final XOR all ones) is
the catalogue's CRC-64/NVME, which awscrt implements with carry-less multiplication: 0.04 ms per MiB
here, against 0.39 for Microsoft's table-driven ``azure-storage-extensions`` (which gives the same
values; it says it is not for standalone use) and 1.2 for MD5. A CRC continues across calls, so one
pass over a file's blocks in order gives the whole file's CRC.
"""

from __future__ import annotations

import base64
import os

from .errors import ProviderNotInstalledError


def crc64(data, previous: int = 0) -> int:
    """CRC-64/NVME of ``data`` continuing from ``previous`` (the CRC of what came before it)."""
    return _crc64nvme()(data, previous)


def crc64_header(data) -> str:
    """The value of an ``x-ms-content-crc64`` header for ``data``: its CRC, 8 bytes little-endian, base64."""
    return base64.b64encode(crc64(data).to_bytes(8, "little")).decode()


def crc64_hex(value: int) -> str:
    return f"{value:016x}"


def file_crc64(path: str | os.PathLike) -> str:
    """CRC-64/NVME of a file (hex), read in blocks and checked unchanged, as :func:`.source.file_md5`."""
    from .source import SourceFile

    src, value = SourceFile(path, md5=False), 0
    for block in src.chunks():
        value = crc64(block, value)
    return crc64_hex(value)


_IMPL = None


def _crc64nvme():
    global _IMPL
    if _IMPL is None:
        try:
            from awscrt.checksums import crc64nvme
        except ImportError:
            raise ProviderNotInstalledError(
                "CRC64 checksums need awscrt: pip install 'ml-analytics-cloud[azure]'") from None
        _IMPL = crc64nvme
    return _IMPL
