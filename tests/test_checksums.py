"""CRC-64/NVME as Azure computes it, and the [AZURE] checksum settings."""

from __future__ import annotations

import base64
import os
import sys

import pytest

from ml_analytics import checksums
from ml_analytics.errors import ProviderNotInstalledError
from ml_analytics.testing.servers import free_port


def test_crc64_is_azures_storage_crc64():
    # The CRC catalogue's check value for CRC-64/NVME; Microsoft's own azure-storage-extensions
    # (crc64.compute(b"123456789", 0)) gives the same, and so Azure Storage's x-ms-content-crc64.
    assert checksums.crc64(b"123456789") == 0xAE8B14860A799888
    assert checksums.crc64(b"") == 0


def test_crc64_continues_across_blocks_and_the_header_is_little_endian_base64(tmp_path):
    data = os.urandom(3 * 1024 * 1024 + 7)
    whole = checksums.crc64(data)
    assert checksums.crc64(data[1_000_000:], checksums.crc64(data[:1_000_000])) == whole
    assert base64.b64decode(checksums.crc64_header(data)) == whole.to_bytes(8, "little")
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    assert checksums.file_crc64(path) == f"{whole:016x}"


def test_missing_awscrt_is_a_named_install_error(monkeypatch):
    monkeypatch.setattr(checksums, "_IMPL", None)
    monkeypatch.setitem(sys.modules, "awscrt.checksums", None)
    with pytest.raises(ProviderNotInstalledError, match=r"awscrt.*\[azure\]"):
        checksums.crc64(b"x")


@pytest.mark.parametrize("value", ["sha1", "crc32"])
def test_azure_checksum_setting_is_checked(cli, write_config, value):
    cfg = write_config(f"[AZURE]\naccount_name = a\ncontainer_name = c\naccount_key = {'QUJD' * 8}\n"
                       f"endpoint_url = http://127.0.0.1:{free_port()}/a\nchecksum = {value}\n")
    result = cli("check", "--config", cfg)
    assert result.code == 2 and "[AZURE]" in result.err and "checksum" in result.err and value in result.err
    assert "Traceback" not in result.err and len(result.err.strip().splitlines()) == 1


@pytest.mark.parametrize("value,expected", [("", "crc64"), (" MD5 ", "md5"), ("crc64", "crc64")])
def test_azure_checksum_values(value, expected):
    from ml_analytics.cloud_storage.ms_azure import MSAzure

    azure = MSAzure(accountName="a", containerName="c", accountKey="QUJD" * 8, checksum=value)
    assert azure.checksum == expected and azure.md5_multipart is False
