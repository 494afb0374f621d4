"""A failed Azure or GCS upload leaves the stored object exactly as it was.

Against Azurite and fake-gcs-server, with the fault proxy in front: an object is stored under the key
(by a single Put Blob, by a block list, or by a GCS upload), then a big upload of other content to
the same key fails (blocks refused, commit refused, copy refused, the file changed while it was read,
the session's last piece refused). The stored object must still be byte for byte what it was, with
its Content-MD5 (and on Azure its metadata); Azure must hold no uncommitted block and no temporary
blob; nothing else appears.
The stores' own SDKs do the checking.
"""

from __future__ import annotations

import base64
import hashlib
import os

import pytest
from conftest import fresh_name

from ml_analytics.cloud_storage.gcp import GCP
from ml_analytics.cloud_storage.ms_azure import MSAzure
from ml_analytics.errors import IntegrityError, MLAnalyticsError
from ml_analytics.retry import RetryPolicy
from ml_analytics.testing import faults as F
from ml_analytics.testing.proxy import FaultProxy
from ml_analytics.testing.servers import AZURITE_ACCOUNT, AZURITE_KEY

MiB = 1024 * 1024
QUICK = RetryPolicy(max_retries=1, initial_backoff=0.01, max_backoff=0.05, total_timeout=5, request_timeout=5)
KEY = "reports/big.bin"


def _big(tmp_path, mib: int, name: str = "big.bin") -> tuple:
    data = os.urandom(mib * MiB)
    path = tmp_path / name
    path.write_bytes(data)
    return path, data


def _rewrite_in_place(path):
    """Change the file without changing its size (new bytes, new modification time)."""
    with open(path, "r+b") as fh:
        fh.seek(MiB)
        fh.write(os.urandom(4096))
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))


# -- Azure -----------------------------------------------------------------------------------------------
def _block_put(req) -> bool:
    return req.method == "PUT" and "comp=block&" in req.target + "&" and "blockid=" in req.target


def _block_list_put(req) -> bool:
    return req.method == "PUT" and "comp=blocklist" in req.target


def _copy(req) -> bool:
    return req.method == "PUT" and "x-ms-copy-source" in req.headers


class Azure:
    def __init__(self, azurite):
        self.server = azurite
        self.container = azurite.create_container(fresh_name("keep"))
        self.client = azurite.service_client().get_container_client(self.container)

    def provider(self, endpoint=None, retry=QUICK, **options):
        return MSAzure(accountName=AZURITE_ACCOUNT, accountKey=AZURITE_KEY, containerName=self.container,
                       endpoint_url=f"{endpoint or f'http://127.0.0.1:{self.server.port}'}/{AZURITE_ACCOUNT}",
                       retry=retry, **options)

    def store_single_put(self, data: bytes) -> None:
        from azure.storage.blob import ContentSettings

        md5 = bytearray(hashlib.md5(data).digest())
        self.client.upload_blob(KEY, data, overwrite=True, content_settings=ContentSettings(content_md5=md5))
        assert self.client.get_blob_client(KEY).get_block_list("committed")[0] == []  # no block list

    def store_block_list(self, tmp_path, data: bytes) -> None:
        path = tmp_path / "previous.bin"
        path.write_bytes(data)
        self.provider().put_file(path, KEY)
        assert self.client.get_blob_client(KEY).get_block_list("committed")[0]

    def snapshot(self) -> dict:
        out = {}
        for b in self.client.list_blobs():
            blob = self.client.get_blob_client(b.name)
            props = blob.get_blob_properties()
            md5 = props.content_settings.content_md5
            out[b.name] = (blob.download_blob().readall(), bytes(md5).hex() if md5 else None, dict(props.metadata))
        return out

    def uncommitted(self) -> dict:
        names = {b.name for b in self.client.list_blobs(include=["uncommittedblobs"])}
        found = {n: self.client.get_blob_client(n).get_block_list("uncommitted")[1] for n in names}
        return {n: len(blocks) for n, blocks in found.items() if blocks}


@pytest.fixture
def azure(azurite):
    return Azure(azurite)


PREVIOUS = ["single Put Blob", "block list", "nothing"]


def _store_previous(azure, kind, tmp_path) -> dict:
    if kind == "single Put Blob":
        azure.store_single_put(os.urandom(1000))
    elif kind == "block list":
        azure.store_block_list(tmp_path, os.urandom(33 * MiB + 5))
    before = azure.snapshot()
    assert (KEY in before) == (kind != "nothing")
    return before


AZURE_FAILURES = {  # schedules count requests: built afresh for every test
    "every block refused": lambda: F.always(F.AZURE_SERVER_BUSY, when=_block_put),
    "blocks refused after the first three": lambda: F.burst(4, 10_000, F.AZURE_SERVER_BUSY, when=_block_put),
    # the commit and its one retry (QUICK); the clean-up's own commit then goes through
    "commit refused": lambda: F.burst(1, 2, F.AZURE_SERVER_BUSY, when=_block_list_put),
    "connection reset on every block": lambda: F.always(F.RESET_DURING, when=_block_put),
}


@pytest.mark.parametrize("previous", PREVIOUS)
@pytest.mark.parametrize("failure", list(AZURE_FAILURES))
def test_azure_failed_block_upload_keeps_the_stored_blob(azure, tmp_path, previous, failure):
    before = _store_previous(azure, previous, tmp_path)
    path, _ = _big(tmp_path, 40)
    counted = F.Counted(AZURE_FAILURES[failure]())
    with FaultProxy(azure.server.port, counted) as proxy:
        with pytest.raises(MLAnalyticsError):
            azure.provider(proxy.endpoint).put_file(path, KEY)
    assert counted.fired
    assert azure.snapshot() == before  # byte for byte, same Content-MD5, nothing else (no temporary blob)
    assert azure.uncommitted() == {}


@pytest.mark.parametrize("previous", PREVIOUS)
def test_azure_file_changed_during_upload_keeps_the_stored_blob(azure, tmp_path, previous):
    before = _store_previous(azure, previous, tmp_path)
    path, _ = _big(tmp_path, 40)
    blocks = []

    def change_on_second_block(req):
        if _block_put(req):
            blocks.append(req)
            if len(blocks) == 2:
                _rewrite_in_place(path)

    with FaultProxy(azure.server.port, change_on_second_block) as proxy:
        with pytest.raises(IntegrityError, match="changed while it was read"):
            azure.provider(proxy.endpoint).put_file(path, KEY)
    assert azure.snapshot() == before
    assert azure.uncommitted() == {}


def test_azure_failed_copy_over_a_single_put_blob_keeps_it(azure, tmp_path):
    before = _store_previous(azure, "single Put Blob", tmp_path)
    path, _ = _big(tmp_path, 40)
    with FaultProxy(azure.server.port, F.always(F.AZURE_SERVER_BUSY, when=_copy)) as proxy:
        with pytest.raises(MLAnalyticsError):
            azure.provider(proxy.endpoint).put_file(path, KEY)
    assert azure.snapshot() == before
    assert azure.uncommitted() == {}


def _crc64_hex(data: bytes) -> str:
    from awscrt.checksums import crc64nvme

    return f"{crc64nvme(data):016x}"


@pytest.mark.parametrize("previous", PREVIOUS)
@pytest.mark.parametrize("md5_multipart", [False, True])
def test_azure_big_upload_replaces_the_blob_and_leaves_nothing_else(azure, tmp_path, previous, md5_multipart):
    _store_previous(azure, previous, tmp_path)
    path, data = _big(tmp_path, 40)
    stored = azure.provider(md5Multipart=md5_multipart).put_file(path, KEY)
    md5 = hashlib.md5(data).hexdigest() if md5_multipart else None
    assert stored.md5 == md5 and stored.bytes == len(data)
    # the whole blob's CRC64 is kept as metadata (skip-unchanged compares it), its MD5 only when asked for
    assert azure.snapshot() == {KEY: (data, md5, {"ml_analytics_crc64": _crc64_hex(data)})}
    assert azure.uncommitted() == {}
    assert len(azure.client.get_blob_client(KEY).get_block_list("committed")[0]) == 5  # 8 MiB blocks


def test_azure_blocks_carry_their_crc64_and_a_store_reporting_another_is_refused(azure, tmp_path):
    """Azure answers a Put Block with its own CRC64 of what it received: the proxy plays that part
    (Azurite does not), and flips a byte of the third block on the way."""
    from ml_analytics.checksums import crc64_header

    before = _store_previous(azure, "block list", tmp_path)
    path, data = _big(tmp_path, 40)
    sent = []

    def corrupt_third_block(req):
        if _block_put(req):
            sent.append((req.headers.get("x-ms-content-crc64"), crc64_header(req.body), req.headers.get("content-md5")))
            kind = "corrupt-respond-header" if len(sent) == 3 else "respond-header"
            return (kind, "x-ms-content-crc64", crc64_header)

    with FaultProxy(azure.server.port, corrupt_third_block) as proxy:
        with pytest.raises(IntegrityError, match="CRC64"):
            azure.provider(proxy.endpoint, retry=RetryPolicy(max_retries=0)).put_file(path, KEY)
    assert sent and all(header == actual and md5 is None for header, actual, md5 in sent)
    assert azure.snapshot() == before
    assert azure.uncommitted() == {}


def test_azure_blocks_carry_their_md5_and_a_corrupted_block_is_refused(azure, tmp_path):
    """checksum = md5: the check Azurite itself verifies."""
    before = _store_previous(azure, "block list", tmp_path)
    path, _ = _big(tmp_path, 40)
    seen = []

    def corrupt_third_block(req):
        if _block_put(req):
            seen.append((req.headers.get("content-md5"), req.headers.get("x-ms-content-crc64")))
            if len(seen) == 3:
                return ("corrupt",)

    with FaultProxy(azure.server.port, corrupt_third_block) as proxy:
        with pytest.raises(MLAnalyticsError):
            azure.provider(proxy.endpoint, retry=RetryPolicy(max_retries=0), checksum="md5").put_file(path, KEY)
    md5s = [md5 for md5, _ in seen]
    assert all(md5s) and len(set(md5s)) == len(md5s) and not any(crc for _, crc in seen)
    assert azure.snapshot() == before
    assert azure.uncommitted() == {}


@pytest.mark.timeout(60)
def test_azure_checksum_thread_failing_fails_the_upload_instead_of_hanging(azure, tmp_path, monkeypatch):
    """The thread folding blocks into the whole-file CRC64 fails (awscrt missing): the upload ends with
    that error, nothing is committed or left staged."""
    from ml_analytics.cloud_storage import azure_blocks
    from ml_analytics.errors import ProviderNotInstalledError

    def missing(*_a):
        raise ProviderNotInstalledError("CRC64 checksums need awscrt")

    before = _store_previous(azure, "block list", tmp_path)
    monkeypatch.setattr(azure_blocks, "crc64", missing)
    path, _ = _big(tmp_path, 40)
    with pytest.raises(ProviderNotInstalledError, match="awscrt"):
        azure.provider(checksum="md5", maxConcurrency=1).put_file(path, KEY)
    assert azure.snapshot() == before
    assert azure.uncommitted() == {}


def test_azure_strict_azurite_refusing_crc64_gets_md5_blocks(tmp_path, caplog):
    """Azurite in strict mode answers x-ms-content-crc64 with 500 FeatureNotSupported: not retried ten
    times, the upload goes on with Content-MD5 blocks (which it verifies) and says so once."""
    from ml_analytics.testing.servers import Azurite

    with Azurite(workdir=tmp_path / "strict", loose=False) as strict:
        azure = Azure(strict)
        path, data = _big(tmp_path, 40)
        with FaultProxy(strict.port) as proxy:
            stored = azure.provider(proxy.endpoint, retry=RetryPolicy(max_retries=10, total_timeout=60)) \
                .put_file(path, KEY)
        blocks = [r for r in proxy.requests if _block_put(r)]
        with_crc = [b for b in blocks if "x-ms-content-crc64" in b.headers]
        with_md5 = {b.target for b in blocks if "content-md5" in b.headers}
        assert stored.bytes == len(data) and azure.snapshot()[KEY][0] == data
        # the blocks sent before the first refusal came back were refused once each, never retried with CRC64
        assert 1 <= len(with_crc) <= 5 and len({b.target for b in with_crc}) == len(with_crc)
        assert len(with_md5) == 5 and len(blocks) == len(with_crc) + 5
        assert sum("does not take CRC64" in r.message for r in caplog.records) == 1


# -- GCS -------------------------------------------------------------------------------------------------
def _session_put(req) -> bool:
    return req.method == "PUT" and "upload_id=" in req.target


def _session_start(req) -> bool:
    return req.method == "POST" and "uploadType=resumable" in req.target


class GCS:
    def __init__(self, fake_gcs):
        self.server = fake_gcs
        self.bucket_name = fake_gcs.create_bucket(fresh_name("keep"))
        self.bucket = fake_gcs.client().bucket(self.bucket_name)

    def provider(self, endpoint=None, retry=QUICK):
        return GCP(bucketName=self.bucket_name, endpoint_url=endpoint or self.server.endpoint, retry=retry)

    def snapshot(self) -> dict:
        return {b.name: (b.download_as_bytes(), b.md5_hash, b.generation)
                for b in self.server.client().list_blobs(self.bucket_name)}


@pytest.fixture
def gcs(fake_gcs):
    return GCS(fake_gcs)


GCS_FAILURES = {
    "upload refused": lambda: F.always(F.HTTP_503, when=_session_put),
    "connection reset during every upload": lambda: F.always(F.RESET_DURING, when=_session_put),
    "session start refused": lambda: F.always(F.HTTP_503, when=_session_start),
}


@pytest.mark.parametrize("failure", list(GCS_FAILURES))
def test_gcs_failed_resumable_upload_keeps_the_stored_object(gcs, tmp_path, failure):
    gcs.bucket.blob(KEY).upload_from_string(os.urandom(5000))
    before = gcs.snapshot()
    path, _ = _big(tmp_path, 20)
    with FaultProxy(gcs.server.port, GCS_FAILURES[failure]()) as proxy:
        with pytest.raises(MLAnalyticsError):
            gcs.provider(proxy.endpoint).put_file(path, KEY)
    assert gcs.snapshot() == before  # same bytes, same MD5, same generation: never rewritten


def test_gcs_file_changed_during_upload_keeps_the_stored_object(gcs, tmp_path):
    """The file changes after it was checked and before its bytes are read: the request never gets its
    last block, so the store never commits."""
    gcs.bucket.blob(KEY).upload_from_string(os.urandom(5000))
    before = gcs.snapshot()
    path, _ = _big(tmp_path, 20)

    def change_when_the_session_opens(req):
        if _session_start(req):
            _rewrite_in_place(path)

    with FaultProxy(gcs.server.port, change_when_the_session_opens) as proxy:
        with pytest.raises(IntegrityError, match="changed while it was read"):
            gcs.provider(proxy.endpoint).put_file(path, KEY)
    assert gcs.snapshot() == before
    assert not [r for r in proxy.requests if _session_put(r) and len(r.body) == 20 * MiB]  # never complete


def test_gcs_big_upload_is_one_request_and_its_md5_is_compared(gcs, tmp_path):
    path, data = _big(tmp_path, 20)
    with FaultProxy(gcs.server.port) as proxy:
        stored = gcs.provider(proxy.endpoint).put_file(path, KEY)
    assert [r.method for r in proxy.requests] == ["POST", "PUT"]
    assert stored.md5 == hashlib.md5(data).hexdigest()
    blob = gcs.bucket.get_blob(KEY)
    assert base64.b64decode(blob.md5_hash).hex() == stored.md5
    assert blob.download_as_bytes() == data


@pytest.fixture
def small_chunks(monkeypatch):
    """Resumable requests of 16 MiB instead of 96, so a 40 MiB file takes three."""
    from ml_analytics.cloud_storage import gcp

    monkeypatch.setattr(gcp, "RESUMABLE_CHUNK", 16 * MiB)


def test_gcs_bigger_than_a_chunk_goes_in_several_requests_of_one_session(gcs, tmp_path, small_chunks):
    path, data = _big(tmp_path, 40)
    with FaultProxy(gcs.server.port) as proxy:
        stored = gcs.provider(proxy.endpoint).put_file(path, KEY)
    puts = [r for r in proxy.requests if _session_put(r)]
    assert [r.headers["content-range"] for r in puts] == [
        f"bytes 0-{16 * MiB - 1}/*", f"bytes {16 * MiB}-{32 * MiB - 1}/*", f"bytes {32 * MiB}-{40 * MiB - 1}/{40 * MiB}"]
    assert len({r.target for r in puts}) == 1 and [len(r.body) for r in puts] == [16 * MiB, 16 * MiB, 8 * MiB]
    assert stored.md5 == hashlib.md5(data).hexdigest() and gcs.bucket.get_blob(KEY).download_as_bytes() == data


@pytest.mark.parametrize("when", ["second request refused", "file changed before the last request"])
def test_gcs_a_session_failing_after_its_first_request_keeps_the_stored_object(gcs, tmp_path, small_chunks, when):
    gcs.bucket.blob(KEY).upload_from_string(os.urandom(5000))
    before = gcs.snapshot()
    path, _ = _big(tmp_path, 40)
    puts = []

    def rule(req):
        if _session_put(req):
            puts.append(req)
            if len(puts) == 2:
                if when == "second request refused":
                    return F.HTTP_503
                _rewrite_in_place(path)  # the first two requests went out; the rest of the file changes

    with FaultProxy(gcs.server.port, rule) as proxy:
        with pytest.raises(MLAnalyticsError):
            gcs.provider(proxy.endpoint, retry=RetryPolicy(max_retries=0)).put_file(path, KEY)
    assert gcs.snapshot() == before  # same bytes, same MD5, same generation: the session never completed
    assert not [r for r in proxy.requests if _session_put(r) and r.headers["content-range"].endswith(f"/{40 * MiB}")
                and len(r.body) == 8 * MiB]


def test_gcs_corrupted_big_upload_is_refused(gcs, tmp_path):
    """fake-gcs-server 1.54 checks no declared checksum: the comparison with the MD5 it reports finds
    the corruption, and the corrupted generation is not kept."""
    path, _ = _big(tmp_path, 20)
    with FaultProxy(gcs.server.port, F.always(("corrupt",), when=_session_put)) as proxy:
        with pytest.raises(IntegrityError, match="differs"):
            gcs.provider(proxy.endpoint).put_file(path, KEY)
    assert gcs.snapshot() == {}


def test_gcs_small_upload_declares_both_checksums(gcs, tmp_path):
    data = os.urandom(3000)
    with FaultProxy(gcs.server.port) as proxy:
        gcs.provider(proxy.endpoint).put_bytes(data, "s.bin")
    (post,) = [r for r in proxy.requests if r.method == "POST"]
    assert f'"md5Hash": "{base64.b64encode(hashlib.md5(data).digest()).decode()}"'.encode() in post.body
    assert b'"crc32c": ' in post.body
    assert gcs.bucket.blob("s.bin").download_as_bytes() == data


# -- bounded waits -----------------------------------------------------------------------------------------
def _requests_made(provider_factory, tmp_path, rule, size):
    """Upload through a proxy applying ``rule`` to every request; return how many requests it saw."""
    path = tmp_path / "f.bin"
    path.write_bytes(os.urandom(size))
    with FaultProxy(1, rule) as proxy:  # upstream never reached: every request is answered by the rule
        with pytest.raises(MLAnalyticsError):
            provider_factory(proxy.endpoint).put_file(path, "k.bin")
        return len(proxy.requests)


@pytest.mark.parametrize("retries", [0, 2])
@pytest.mark.parametrize("size", [1000, 20 * MiB])
def test_gcs_honours_max_retries(gcs, tmp_path, retries, size):
    policy = RetryPolicy(max_retries=retries, initial_backoff=0.01, max_backoff=0.02, total_timeout=30)
    seen = _requests_made(lambda ep: gcs.provider(ep, retry=policy), tmp_path, lambda r: F.HTTP_503, size)
    # one attempt plus max_retries (of the upload, or of opening the session); after a single request
    # upload, one look to see whether the object landed although the answer was lost
    assert seen == retries + 1 + (1 if size == 1000 else 0)


@pytest.mark.parametrize("retries", [0, 2])
def test_azure_honours_max_retries(azure, tmp_path, retries):
    policy = RetryPolicy(max_retries=retries, initial_backoff=0.01, max_backoff=0.02, total_timeout=30)
    seen = _requests_made(lambda ep: azure.provider(ep, retry=policy), tmp_path, lambda r: F.AZURE_SERVER_BUSY, 1000)
    assert seen == retries + 1


def test_retries_stop_at_retry_timeout(gcs, azure, tmp_path):
    """A store that stalls every request past request_timeout: retries stop once retry_timeout has
    passed, however many max_retries would allow (attempts counted, not time)."""
    policy = RetryPolicy(max_retries=50, initial_backoff=0.01, max_backoff=0.02, total_timeout=1.5,
                         request_timeout=1, connect_timeout=1)
    stall = lambda r: ("stall", 5)  # noqa: E731
    assert _requests_made(lambda ep: gcs.provider(ep, retry=policy), tmp_path, stall, 1000) <= 4
    assert _requests_made(lambda ep: azure.provider(ep, retry=policy), tmp_path, stall, 1000) <= 3
