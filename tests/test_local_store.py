import hashlib
import os
import signal
import subprocess
import sys
import time

import pytest

from ml_analytics.cloud_storage.local import Local
from ml_analytics.errors import BucketNotFoundError, IntegrityError, LocalFileError


@pytest.fixture
def store(tmp_path):
    return Local(root=str(tmp_path / "root"), bucketName="bkt")


def test_object_lives_at_root_bucket_key_and_reports_md5(store, tmp_path):
    f = tmp_path / "sl_projects.json"
    f.write_bytes(b'{"a":1}\n' * 1000)
    stored = store.upload_files(bucketPath="/projects//2026/", localPath=str(tmp_path), fileName="sl_projects.json")
    dest = tmp_path / "root" / "bkt" / "projects" / "2026" / "sl_projects.json"
    assert dest.read_bytes() == f.read_bytes()
    assert stored.key == "projects/2026/sl_projects.json"
    assert stored.uri == dest.as_uri()
    assert stored.md5 == hashlib.md5(f.read_bytes()).hexdigest() and stored.bytes == 8000
    assert [i.key for i in store.list("projects")] == ["projects/2026/sl_projects.json"]
    assert store.stored_md5(store.stat(stored.key)) == stored.md5
    store.delete(stored.key)
    assert not store.exists(stored.key) and not (tmp_path / "root" / "bkt" / "projects").exists()


def test_empty_and_overwrite(store, tmp_path):
    f = tmp_path / "e"
    f.write_bytes(b"")
    assert store.put_file(f, "k").bytes == 0
    f.write_bytes(b"new")
    store.put_file(f, "k")
    assert store.path_of("k").read_bytes() == b"new"


def test_missing_bucket_when_creation_disabled(tmp_path):
    s = Local(root=str(tmp_path), bucketName="absent", createBucket=False)
    with pytest.raises(BucketNotFoundError, match="LOCAL bucket 'absent'"):
        s.put_bytes(b"x", "k")


def test_bad_sources_are_named(store, tmp_path):
    with pytest.raises(LocalFileError, match="no such file"):
        store.put_file(tmp_path / "nope", "k")
    with pytest.raises(LocalFileError, match="is a directory"):
        store.put_file(tmp_path, "k")
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(LocalFileError, match="FIFO"):
        store.put_file(tmp_path / "fifo", "k")
    (tmp_path / "dangling").symlink_to(tmp_path / "gone")
    with pytest.raises(LocalFileError, match="dangling"):
        store.put_file(tmp_path / "dangling", "k")


def test_file_changing_while_read_is_not_stored(store, tmp_path, monkeypatch):
    f = tmp_path / "grow"
    f.write_bytes(b"x" * 100)
    from ml_analytics import source

    real = source.SourceFile.chunks

    def chunks_then_append(self, size=source.READ_BLOCK):
        for block in real(self, 10):
            with open(f, "ab") as fh:
                fh.write(b"y")
            yield block

    monkeypatch.setattr(source.SourceFile, "chunks", chunks_then_append)
    with pytest.raises(IntegrityError, match="grew|changed"):
        store.put_file(f, "torn")
    assert not store.exists("torn")
    assert not [p for p in (tmp_path / "root" / "bkt").rglob("*") if p.is_file()]


def test_killed_mid_write_leaves_no_partial_object(tmp_path):
    """SIGKILL a writer in the middle of a large write: the final name never holds a partial file."""
    root = tmp_path / "root"
    big = tmp_path / "big"
    big.write_bytes(os.urandom(1024 * 1024) * 256)  # 256 MiB
    code = ("from ml_analytics.cloud_storage.local import Local; import sys;"
            f"Local(root={str(root)!r}, bucketName='b').put_file({str(big)!r}, 'k/big'); print('done')")
    proc = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.time() + 30
    while time.time() < deadline:
        tmps = list((root / "b" / "k").glob(".ml-analytics-tmp-*")) if (root / "b" / "k").exists() else []
        if tmps and tmps[0].stat().st_size > 0:
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    final = root / "b" / "k" / "big"
    assert not final.exists() or final.stat().st_size == big.stat().st_size
    store = Local(root=str(root), bucketName="b")
    assert [i.key for i in store.list()] in ([], ["k/big"])  # temp files are never listed as objects
