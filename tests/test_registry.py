import subprocess
import sys
import textwrap

import pytest

from ml_analytics.cloud_storage import CloudProvider, MultiCloud, Option, registry
from ml_analytics.config import Config
from ml_analytics.errors import ConfigError, UsageError


def test_builtins_are_registered_by_section():
    sections = registry.sections()
    for name in ("LOCAL", "AWS", "ORACLE", "S3", "AZURE", "GCP"):
        assert name in sections
    assert registry.get("local").section == "LOCAL"  # case-insensitive


def test_unknown_section_lists_known_ones():
    with pytest.raises(UsageError, match="known providers: .*LOCAL"):
        registry.get("NOPE")


def test_loading_providers_imports_no_cloud_sdk():
    code = ("import sys; from ml_analytics.cloud_storage import registry; registry.load(); "
            "bad=[m for m in ('boto3','botocore','obstore','azure.storage.blob','google.cloud.storage') if m in sys.modules];"
            "print(bad); assert not bad")
    subprocess.run([sys.executable, "-c", code], check=True)


class _Memory(CloudProvider):
    section = "MEMTEST"
    description = "test provider"
    options = (Option("bucket_name", required=True, arg="bucketName"), Option("token", secret=True, arg="token"))

    def __init__(self, bucketName, token=None):  # noqa: N803
        self.bucket = bucketName
        self._secret_token = token
        self.objects = {}

    def put_file(self, path, key):
        from ml_analytics.cloud_storage.base import StoredObject
        from ml_analytics.source import SourceFile

        src = SourceFile(path)
        self.objects[key] = src.read_all()
        return StoredObject(self.section, key, self.uri(key), len(self.objects[key]), src.md5)

    def uri(self, key):
        return f"mem://{self.bucket}/{key}"

    def stat(self, key):
        return None

    def list(self, prefix=""):
        return iter(())

    def delete(self, key):
        self.objects.pop(key, None)


@pytest.fixture
def memory_provider():
    registry.register(_Memory)
    yield _Memory
    registry.unregister("MEMTEST")


def test_a_provider_defined_anywhere_registers_itself_and_multicloud_uses_it(tmp_path, memory_provider):
    assert registry.get("MEMTEST") is _Memory
    cfg_path = tmp_path / "c.ini"
    cfg_path.write_text("[MEMTEST]\nbucket_name = b\ntoken = tok-123456\n[LOCAL]\nroot = %s\n" % (tmp_path / "s"))
    (tmp_path / "r.json").write_text("{}\n")
    mc = MultiCloud(cfg_path)
    results = mc.upload_to_cloud(blob_Path="p", local_Path=str(tmp_path), file_Name="r.json")
    assert [(r.provider, r.key, r.status) for r in results] == [("MEMTEST", "p/r.json", "uploaded"),
                                                               ("LOCAL", "p/r.json", "uploaded")]
    assert mc.provider("MEMTEST").objects["p/r.json"] == b"{}\n"
    assert "tok-123456" in mc.secrets and "tok-123456" not in repr(mc.provider("MEMTEST"))


def test_declared_required_key_is_checked(tmp_path, memory_provider):
    cfg = Config.load(None, env={"ML_ANALYTICS_MEMTEST_TOKEN": "x"}, known_sections=("MEMTEST",))
    with pytest.raises(ConfigError, match=r"\[MEMTEST\] bucket_name: required key is missing"):
        _Memory.from_config(cfg)


def test_entry_point_plugin_and_broken_plugin(tmp_path):
    """A separately installed package is found through the entry-point group; a broken one is reported."""
    site = tmp_path / "site"
    pkg = site / "extprov"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(textwrap.dedent("""
        from ml_analytics.cloud_storage import CloudProvider, Option
        class Ext(CloudProvider):
            section = "EXTPROV"
            options = (Option("bucket_name", required=True, arg="bucketName"),)
            def __init__(self, bucketName):
                self.bucket = bucketName
            def put_file(self, path, key): ...
            def stat(self, key): ...
            def list(self, prefix=""): ...
            def delete(self, key): ...
    """))
    (pkg / "broken.py").write_text("raise RuntimeError('cannot start the frobnicator')\n")
    dist = site / "extprov-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: extprov\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[ml_analytics.cloud_providers]\nextprov = extprov:Ext\nbroken = extprov.broken\n")
    code = ("import sys; sys.path.insert(0, %r); from ml_analytics.cloud_storage import registry;"
            "print(registry.get('EXTPROV').__module__); print(registry.origin('EXTPROV')); print(registry.broken())"
            % str(site))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "extprov\nplugin extprov:Ext\n" in out
    assert "broken (plugin extprov.broken)" in out and "cannot start the frobnicator" in out
