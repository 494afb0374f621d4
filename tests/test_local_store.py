import hashlib
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import EXAMPLE_DATA

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
    """SIGKILL a writer in the middle of a large write: the final name never holds a partial file.
    The writer is slowed down (a block every 20 ms) so that the kill provably lands mid-write."""
    root = tmp_path / "root"
    big = tmp_path / "big"
    big.write_bytes(os.urandom(1024 * 1024) * 64)  # 64 MiB, 64 blocks of 1 MiB
    code = ("import time; from ml_analytics.cloud_storage.local import Local; import ml_analytics.source as s\n"
            "orig = s.SourceFile.chunks\n"
            "def slow(self, size=1 << 20):\n"
            "    for b in orig(self, 1 << 20):\n"
            "        time.sleep(0.02); yield b\n"
            "s.SourceFile.chunks = slow\n"
            f"Local(root={str(root)!r}, bucketName='b').put_file({str(big)!r}, 'k/big'); print('done')\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    deadline = time.time() + 30
    written = 0
    while time.time() < deadline:
        tmps = list((root / "b" / "k").glob(".ml-analytics-tmp-*")) if (root / "b" / "k").exists() else []
        written = tmps[0].stat().st_size if tmps else 0
        if written >= 4 * 1024 * 1024:
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate()
    assert proc.returncode == -signal.SIGKILL and "done" not in out  # killed, not finished
    assert 0 < written < big.stat().st_size, written  # the kill landed mid-write
    final = root / "b" / "k" / "big"
    assert not final.exists()
    assert list((root / "b" / "k").glob(".ml-analytics-tmp-*")), "the partial data stays under a temporary name"
    store = Local(root=str(root), bucketName="b")
    assert [i.key for i in store.list()] == []  # temp files are never listed as objects


def test_root_that_is_a_file_or_a_bucket_that_escapes_is_a_config_error(cli, tmp_path, write_config):
    (tmp_path / "afile").write_text("x")
    for body, where in ((f"[LOCAL]\nroot = {tmp_path / 'afile'}\n", "[LOCAL] root"),
                        ("[LOCAL]\nbucket_name = ..\n", "[LOCAL] bucket_name"),
                        ("[LOCAL]\nbucket_name = a/b\n", "[LOCAL] bucket_name")):
        cfg = write_config(body)
        r = cli("upload", EXAMPLE_DATA / "sl_projects.json", "--config", cfg)
        assert r.code == 2 and f"{cfg}: {where}" in r.err and len(r.err.strip().splitlines()) == 1, r.err


def test_later_runs_remove_temporaries_a_killed_run_left_but_not_a_live_ones(tmp_path):
    import subprocess
    import sys

    store = Local(root=str(tmp_path / "s"), bucketName="b")
    folder = tmp_path / "s" / "b" / "p"
    folder.mkdir(parents=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    import socket

    host = socket.gethostname()
    stale = folder / f".ml-analytics-tmp-{dead.pid}@{host}-abc"
    live = folder / f".ml-analytics-tmp-{os.getpid()}@{host}-def"
    elsewhere = folder / f".ml-analytics-tmp-{dead.pid}@another-host-ghi"  # a shared folder: not ours to judge
    stale.write_bytes(b"half a report")
    live.write_bytes(b"being written")
    elsewhere.write_bytes(b"another host's")
    src = tmp_path / "r.json"
    src.write_text("{}\n")
    store.put_file(src, "p/r.json")
    assert not stale.exists() and live.exists() and elsewhere.exists()
    assert [o.key for o in store.list("p")] == ["p/r.json"]


def test_kill_9_mid_write_leaves_a_temporary_the_next_run_removes(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(64 * 1024 * 1024))
    code = ("import sys, time; from ml_analytics.cloud_storage.local import Local; import ml_analytics.source as s\n"
            "orig = s.SourceFile.chunks\n"
            "def slow(self, size=1 << 20):\n"
            "    for b in orig(self, 1 << 20):\n"
            "        time.sleep(0.05); yield b\n"
            "s.SourceFile.chunks = slow\n"
            f"Local(root={str(tmp_path / 's')!r}, bucketName='b').put_file({str(big)!r}, 'p/big.bin')\n")
    proc = subprocess.Popen([sys.executable, "-c", code])
    folder = tmp_path / "s" / "b" / "p"
    deadline = time.time() + 30
    while time.time() < deadline and not (folder.exists() and any(folder.iterdir())):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    leftovers = [p.name for p in folder.iterdir()]
    assert leftovers and all(n.startswith(".ml-analytics-tmp-") for n in leftovers)
    small = tmp_path / "r.json"
    small.write_text("{}\n")
    Local(root=str(tmp_path / "s"), bucketName="b").put_file(small, "p/r.json")
    assert sorted(p.name for p in folder.iterdir()) == ["r.json"]
