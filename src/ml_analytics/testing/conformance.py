"""The provider conformance suite: the checks every built-in provider passes, for any provider.

Use it from pytest by subclassing :class:`ProviderConformance` in a test module and providing
fixtures::

    from ml_analytics.testing.conformance import ProviderConformance

    class TestMyCloud(ProviderConformance):
        @pytest.fixture
        def provider(self):            # a provider on a fresh, empty bucket
            return MyCloud(bucketName=..., ...)

        @pytest.fixture
        def read_back(self):           # reads an object with the cloud's own SDK, not the provider
            return lambda key: my_sdk_get(key)

More fixtures enable more checks. The suite fails loudly: a missing fixture is a failure unless
the class declares it in ``unsupported`` (``{"fixture": "why this store cannot"}``), which skips
with that reason.

* ``wrong_credentials_provider`` (expects AuthenticationError), ``missing_bucket_provider``
  (expects BucketNotFoundError).
* ``corrupting_provider``: traffic passes a proxy that flips a byte of every upload body; the
  store must reject it and nothing may be stored.
* ``provider_through``: ``provider_through(rule)`` is a provider on the same bucket whose traffic
  passes a :class:`~ml_analytics.testing.proxy.FaultProxy` with ``rule``. The suite uses it for a
  store answering 5xx (nothing may be reported uploaded) and for uploads that fail half-way over
  an existing object (the previous object must stay byte for byte).
* ``leftovers``: ``leftovers()`` lists what failed uploads may leave behind in the bucket (open
  multipart uploads, uncommitted blocks, temporary files); it must be empty after every failure.
* ``expected_uri``: ``expected_uri(key)``, the exact URI of an object (default
  ``scheme://bucket/key``).
* ``config_text``: a config.ini section for MultiCloud fan-out through the seed's API.
* ``list_back``: ``list_back(prefix)``, the keys under ``prefix`` as the store's own SDK lists them;
  needed only by a provider that cannot list (below), to see what its ``check`` left behind.

**What a store cannot do.** A provider whose store has no listing or no delete at all (ml-core-service
signs read and write URLs and nothing else) declares it on its class, with the reason:
``cannot = {"list": "...", "delete": "..."}``. The suite then checks that the declaration is true
(those methods raise :class:`~ml_analytics.errors.NotSupportedError` carrying the reason), skips the
checks that need the operation with ``PROVIDER cannot list (declared): reason``, and runs every
other check, the parts of a check that need no listing included (a nested key is still stat-ed,
read back and checked for its URI). Nothing is skipped without a declaration: a provider that lists
passes the listing checks or fails them.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from ..cloud_storage.base import CloudProvider
from ..errors import AuthenticationError, BucketNotFoundError, MLAnalyticsError, NotSupportedError, StorageError

MiB = 1024 * 1024


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _fixture(request, name):
    try:
        return request.getfixturevalue(name)
    except pytest.FixtureLookupError:
        why = getattr(request.cls, "unsupported", {}).get(name)
        if why:
            pytest.skip(f"{name}: {why}")
        pytest.fail(f"{request.cls.__name__} provides no {name} fixture; provide it, or declare why this store "
                    f"cannot in unsupported = {{{name!r}: '...'}}")


def _needs(provider: CloudProvider, operation: str) -> None:
    """Skip, naming the declaration, when the provider declares it cannot do ``operation``."""
    why = type(provider).cannot.get(operation)
    if why:
        pytest.skip(f"{type(provider).__name__} cannot {operation} (declared): {why}")


def _answer_503(req):
    return ("status", 503, b"<Error><Code>ServiceUnavailable</Code><Message>planted</Message></Error>")


def _fail_big_bodies(req):
    return _answer_503(req) if len(req.body) > MiB else None


class _FailBigBodiesAfterTheFirst:
    """The first request carrying more than 1 MiB passes (a part, block or chunk is staged), every
    later one gets 503; small requests pass, so the provider's clean-up after the failure really
    reaches the store."""

    def __init__(self) -> None:
        self.big = 0

    def __call__(self, req):
        if len(req.body) <= MiB:
            return None
        self.big += 1
        return _answer_503(req) if self.big > 1 else None


class ProviderConformance:
    """Checks of the provider contract. Subclass and provide ``provider`` and ``read_back``."""

    big_size = 64 * MiB
    # Fixtures this store cannot provide, with the reason: {"provider_through": "no HTTP to intercept"}.
    unsupported: dict = {}

    # -- uploads ---------------------------------------------------------------------------------
    def test_small_file_round_trip(self, provider: CloudProvider, read_back, tmp_path):
        data = b'{"project_id": 1, "status": "submitted"}\n' * 100
        f = _write(tmp_path / "sl_projects.json", data)
        stored = provider.put_file(f, "projects/sl_projects.json")
        assert stored.key == "projects/sl_projects.json"
        assert stored.bytes == len(data)
        assert stored.md5 == hashlib.md5(data).hexdigest()
        assert stored.provider == provider.section
        assert read_back("projects/sl_projects.json") == data

    def test_big_file_multipart_round_trip(self, provider, read_back, tmp_path):
        block = os.urandom(MiB)
        data = b"".join(bytes([i % 251]) + block[1:] for i in range(self.big_size // MiB)) + b"tail"
        f = _write(tmp_path / "big.json", data)
        stored = provider.put_file(f, "big/big.json")
        assert stored.bytes == len(data)
        digest = hashlib.md5(data).hexdigest()
        if stored.md5 is None:
            # Multipart without a client-side whole-file MD5: the store's ETag must still identify the
            # content, so skip-unchanged can recognise this exact file.
            from ..sync import is_unchanged
            from ..transfer import PlannedFile

            assert stored.etag, "a provider that reports no MD5 must report the store's ETag"
            assert is_unchanged(provider, PlannedFile(f, "big/big.json", len(data)))
        else:
            assert stored.md5 == digest
        got = read_back("big/big.json")
        assert len(got) == len(data) and hashlib.md5(got).hexdigest() == digest

    def test_empty_file(self, provider, read_back, tmp_path):
        f = _write(tmp_path / "empty.json", b"")
        stored = provider.put_file(f, "e/empty.json")
        assert stored.bytes == 0 and stored.md5 == hashlib.md5(b"").hexdigest()
        assert read_back("e/empty.json") == b""
        assert provider.stat("e/empty.json").size == 0

    UNICODE_KEY = "programs/ಕರ್ನಾಟಕ/データ/deep/er/sl projects (1).json"

    def test_unicode_and_nested_keys(self, provider, read_back, tmp_path):
        key = self.UNICODE_KEY
        f = _write(tmp_path / "u.json", b"unicode\n")
        stored = provider.put_file(f, key)
        assert stored.key == key
        assert read_back(key) == b"unicode\n"
        assert provider.stat(key).size == len(b"unicode\n")
        assert stored.uri == provider.uri(key)

    def test_list_finds_unicode_and_nested_keys(self, provider, tmp_path):
        _needs(provider, "list")
        provider.put_file(_write(tmp_path / "u.json", b"unicode\n"), self.UNICODE_KEY)
        assert [o.key for o in provider.list("programs")] == [self.UNICODE_KEY]

    def test_overwrite(self, provider, read_back, tmp_path):
        f = _write(tmp_path / "o.json", b"first version\n")
        provider.put_file(f, "o.json")
        f.write_bytes(b"second\n")
        stored = provider.put_file(f, "o.json")
        assert read_back("o.json") == b"second\n"
        assert stored.bytes == 7
        assert provider.stat("o.json").size == 7

    def test_seed_upload_files(self, provider, read_back, tmp_path):
        _write(tmp_path / "out" / "observation_status.json", b'{"a": 1}\n')
        stored = provider.upload_files(bucketPath="/reports//2026/", localPath=str(tmp_path / "out"),
                                       fileName="observation_status.json")
        assert stored.key == "reports/2026/observation_status.json"
        assert read_back("reports/2026/observation_status.json") == b'{"a": 1}\n'

    # -- what the store says ------------------------------------------------------------------------
    def test_uri_names_the_object(self, request, provider, tmp_path):
        stored = provider.put_file(_write(tmp_path / "x.json", b"x"), "a/b/x.json")
        assert stored.uri == provider.uri("a/b/x.json")
        try:
            expected = request.getfixturevalue("expected_uri")("a/b/x.json")
        except pytest.FixtureLookupError:
            expected = f"{provider.uri_scheme}://{provider.bucket}/a/b/x.json"
        assert stored.uri == expected
        assert provider.key_for_uri(stored.uri) == "a/b/x.json"

    def test_stat(self, provider, tmp_path):
        assert provider.stat("nope/missing.json") is None
        for name in ("p/a.json", "p/sub/b.json"):
            provider.put_file(_write(tmp_path / "f", name.encode()), name)
        info = provider.stat("p/sub/b.json")
        assert info.key == "p/sub/b.json" and info.size == len(b"p/sub/b.json")
        assert provider.stored_md5(info) in (None, hashlib.md5(b"p/sub/b.json").hexdigest())
        assert provider.stat("p/sub") is None  # a folder's name is not an object

    def test_list(self, provider, tmp_path):
        _needs(provider, "list")
        for name in ("p/a.json", "p/sub/b.json", "q/c.json", "p2/d.json"):
            provider.put_file(_write(tmp_path / "f", name.encode()), name)
        assert sorted(o.key for o in provider.list("p")) == ["p/a.json", "p/sub/b.json"]
        assert sorted(o.key for o in provider.list("")) == ["p/a.json", "p/sub/b.json", "p2/d.json", "q/c.json"]

    def test_delete(self, provider, tmp_path):
        _needs(provider, "delete")
        for name in ("p/a.json", "p/sub/b.json"):
            provider.put_file(_write(tmp_path / "f", name.encode()), name)
        provider.delete("p/a.json")
        provider.delete("p/a.json")  # deleting twice is not an error
        assert provider.stat("p/a.json") is None
        assert provider.stat("p/sub/b.json").size == len(b"p/sub/b.json")
        if "list" not in type(provider).cannot:
            assert sorted(o.key for o in provider.list("p")) == ["p/sub/b.json"]

    def test_what_it_declares_it_cannot_do_it_really_cannot(self, provider):
        """A ``cannot`` declaration skips checks; it must be true: the method refuses with the reason."""
        calls = {"list": lambda: list(provider.list("")), "delete": lambda: provider.delete("declared/none.json")}
        for operation, why in type(provider).cannot.items():
            with pytest.raises(NotSupportedError) as e:
                calls[operation]()
            assert why in str(e.value)

    def test_skip_unchanged_detects_same_and_changed(self, provider, tmp_path):
        from ..sync import is_unchanged
        from ..transfer import PlannedFile

        f = _write(tmp_path / "s.json", os.urandom(1000))
        provider.put_file(f, "s.json")
        item = PlannedFile(f, "s.json", f.stat().st_size)
        assert is_unchanged(provider, item)
        f.write_bytes(os.urandom(1000))  # same size, other content
        assert not is_unchanged(provider, item)
        assert not is_unchanged(provider, PlannedFile(f, "absent.json", 1000))

    def test_check_probe_leaves_nothing(self, request, provider):
        message = provider.check()
        assert isinstance(message, str) and message
        if "list" in type(provider).cannot:  # the store's own listing says what is there
            assert list(_fixture(request, "list_back")("")) == []
        else:
            assert list(provider.list("")) == []

    def test_repr_holds_no_secret(self, provider):
        text = repr(provider) + str(vars(provider).get("bucket"))
        for secret in provider.secrets:
            assert secret not in text

    # -- failures ---------------------------------------------------------------------------------------
    def test_wrong_credentials_are_a_typed_error(self, request, tmp_path):
        bad = _fixture(request, "wrong_credentials_provider")
        with pytest.raises(AuthenticationError) as e:
            bad.put_file(_write(tmp_path / "x", b"x"), "x")
        assert bad.section in str(e.value) and bad.bucket in str(e.value)
        for secret in bad.secrets:
            assert secret not in str(e.value)

    def test_missing_bucket_is_a_typed_error(self, request, tmp_path):
        missing = _fixture(request, "missing_bucket_provider")
        with pytest.raises(BucketNotFoundError) as e:
            missing.put_file(_write(tmp_path / "x", b"x"), "x")
        assert missing.bucket in str(e.value)

    def test_corrupted_body_is_rejected_by_the_store(self, request, provider, tmp_path):
        corrupting = _fixture(request, "corrupting_provider")
        f = _write(tmp_path / "c.json", b'{"row": 1}\n' * 50)
        with pytest.raises(StorageError):
            corrupting.put_file(f, "corrupt/c.json")
        assert provider.stat("corrupt/c.json") is None  # nothing stored under the key

    def test_a_store_answering_5xx_gets_nothing_reported_uploaded(self, request, provider, tmp_path):
        through = _fixture(request, "provider_through")
        from ..transfer import PlannedFile, TransferEngine

        failing = through(_answer_503)
        f = _write(tmp_path / "r.json", b'{"row": 1}\n' * 100)
        with pytest.raises(StorageError):
            failing.put_file(f, "5xx/r.json")
        results = TransferEngine({failing.section: failing}).run([PlannedFile(str(f), "5xx/r2.json", f.stat().st_size)])
        assert [r.status for r in results] == ["failed"] and results[0].uri is None
        assert provider.stat("5xx/r.json") is None and provider.stat("5xx/r2.json") is None

    @pytest.mark.parametrize("old_size,new_size,staged", [(1000, 12 * MiB, False), (1000, 40 * MiB, True),
                                                          (12 * MiB, 40 * MiB, True)],
                             ids=["small-then-big", "small-then-blocks", "big-then-blocks"])
    def test_a_failed_upload_keeps_the_previous_object(self, request, provider, read_back, tmp_path, old_size,
                                                       new_size, staged):
        """Every big request fails, or (staged) the first part / block / chunk is stored and the later
        ones fail: the key keeps its previous object and nothing is left staged. (A provider that
        sends a file in one request may succeed in the staged case: then the new file is there whole.)"""
        through = _fixture(request, "provider_through")
        leftovers = _fixture(request, "leftovers")
        old = os.urandom(old_size)
        provider.put_file(_write(tmp_path / "old.bin", old), "keep/report.json")
        new = _write(tmp_path / "new.bin", os.urandom(new_size))
        rule = _FailBigBodiesAfterTheFirst() if staged else _fail_big_bodies
        try:
            through(rule).put_file(new, "keep/report.json")
        except MLAnalyticsError:
            assert read_back("keep/report.json") == old, "the previous object was changed or lost"
        else:
            assert staged and rule.big == 1, "an upload reported success although every request failed"
            assert read_back("keep/report.json") == new.read_bytes()
        assert leftovers() == []

    @pytest.mark.parametrize("when", ["first-read", "second-read"])
    @pytest.mark.parametrize("old_size", [1000, 12 * MiB], ids=["over-small", "over-big"])
    def test_a_file_changing_during_upload_keeps_the_previous_object(self, request, provider, read_back, tmp_path,
                                                                    monkeypatch, old_size, when):
        """The file is rewritten in place (same size, other bytes) after the first block is read, or,
        for a provider that reads it twice (hash, then send: ``reads_once = False``), after the first block
        of the second read."""
        from .. import source

        if when == "second-read" and type(provider).reads_once:
            pytest.skip(f"{type(provider).__name__} reads a file once (reads_once = True): no second read to change")
        leftovers = _fixture(request, "leftovers")
        old = os.urandom(old_size)
        provider.put_file(_write(tmp_path / "old.bin", old), "changing/report.json")
        size = 40 * MiB
        f = _write(tmp_path / "changing.bin", os.urandom(size))
        snapshot = f.read_bytes()
        changed = []
        seen = [0]
        real = source.progress

        def change_once(n):
            real(n)
            seen[0] += n
            due = seen[0] > 0 if when == "first-read" else seen[0] > size
            if due and not changed:
                with open(f, "r+b") as fh:
                    fh.seek(-MiB, os.SEEK_END)
                    fh.write(os.urandom(MiB))
                changed.append(seen[0])

        monkeypatch.setattr(source, "progress", change_once)
        try:
            provider.put_file(f, "changing/report.json")
        except MLAnalyticsError as e:
            assert "changed" in str(e) or "grew" in str(e), str(e)
            assert read_back("changing/report.json") == old, "the previous object was changed or lost"
        else:  # read whole before the change (one read, then one request): what it stored is that snapshot
            assert read_back("changing/report.json") == snapshot, "a torn mix of two versions was stored"
        assert leftovers() == []
        if when == "first-read":
            assert changed, "the provider never called ml_analytics.source.progress() as it read the file"
        else:
            assert changed, ("the provider says it reads a file twice (reads_once = False) but never read past its "
                             "size: declare reads_once = True")

    # -- declared capabilities ---------------------------------------------------------------------------
    def test_declared_capabilities_work(self, provider, read_back, tmp_path):
        """Each capability the provider declares does what it promises (a declared but broken one fails)."""
        from ..cloud_storage import capabilities as cap
        from ..errors import AlreadyExistsError, ObjectNotFoundError

        declared = type(provider).capabilities
        if cap.ReadBack in declared:
            provider.put_bytes(b"read me back\n", "cap/read.json")
            assert provider.get_bytes("cap/read.json") == b"read me back\n"
            with pytest.raises(ObjectNotFoundError):
                provider.get_bytes("cap/none-here.json")
        if cap.CreateOnly in declared:
            stored = provider.put_bytes_new(b"first\n", "cap/claim.json")
            assert stored.key == "cap/claim.json" and stored.bytes == 6
            with pytest.raises(AlreadyExistsError):
                provider.put_bytes_new(b"second\n", "cap/claim.json")
            assert read_back("cap/claim.json") == b"first\n"
        if cap.StreamUpload in declared:
            chunks = [os.urandom(MiB) for _ in range(3)]
            stored = provider.put_stream(iter(chunks), "cap/stream.bin")
            assert stored.bytes == 3 * MiB and read_back("cap/stream.bin") == b"".join(chunks)
        if cap.SignedUrls in declared:
            import urllib.request

            provider.put_bytes(b"signed\n", "cap/signed.json")
            with urllib.request.urlopen(provider.sign_url("cap/signed.json"), timeout=30) as resp:
                assert resp.read() == b"signed\n"
        if cap.PrefixCleanup in declared:
            assert isinstance(provider.abort_uploads_under("cap/"), int)
        if cap.Locatable in declared:
            loc = provider.location()
            assert loc.kind in ("s3", "azure", "gcs", "file") and loc.bucket

    def test_multicloud_seed_api(self, request, provider, read_back, tmp_path):
        config_text = _fixture(request, "config_text")
        from ..cloud_storage.cloud import MultiCloud

        cfg = _write(tmp_path / "config.ini", config_text.encode())
        _write(tmp_path / "out" / "sl_projects.json", b'{"x": 1}\n')
        results = MultiCloud(cfg).upload_to_cloud(blob_Path="projects", local_Path=str(tmp_path / "out"),
                                                  file_Name="sl_projects.json")
        assert [(r.provider, r.status) for r in results] == [(provider.section, "uploaded")]
        assert read_back("projects/sl_projects.json") == b'{"x": 1}\n'


__all__ = ["ProviderConformance", "MLAnalyticsError"]
