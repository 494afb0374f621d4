import pytest

from ml_analytics.cloud_storage import MultiCloud
from ml_analytics.errors import ConfigError, LocalFileError, UploadFailedError


def two_locals(tmp_path, second_create="true"):
    p = tmp_path / "c.ini"
    p.write_text(f"[LOCAL]\nroot = {tmp_path}/one\n[LOCAL2]\nroot = {tmp_path}/two\ncreate_bucket = {second_create}\n"
                 "[COMMON]\nconcurrency = 3\n[DRUID]\nbatch_url =\n")
    return p, None


@pytest.fixture
def cleanup_registry():
    """A second LOCAL-like provider, registered for the test (defining a class registers nothing)."""
    from ml_analytics.cloud_storage import registry
    from ml_analytics.cloud_storage.local import Local

    class Local2(Local):
        section = "LOCAL2"

    registry.register(Local2)
    yield Local2
    registry.unregister("LOCAL2")


def test_fans_out_to_every_configured_section(tmp_path, cleanup_registry):
    cfg, _ = two_locals(tmp_path)
    (tmp_path / "f.json").write_text("{}\n")
    mc = MultiCloud(cfg)
    assert mc.sections == ["LOCAL", "LOCAL2"] and mc.concurrency == 3
    results = mc.upload_to_cloud("p", str(tmp_path), "f.json")
    assert {r.provider for r in results} == {"LOCAL", "LOCAL2"}
    assert (tmp_path / "one/ml-analytics/p/f.json").exists() and (tmp_path / "two/ml-analytics/p/f.json").exists()


def test_one_failing_provider_does_not_stop_the_others(tmp_path, cleanup_registry):
    cfg, _ = two_locals(tmp_path, second_create="false")
    (tmp_path / "f.json").write_text("{}\n")
    with pytest.raises(UploadFailedError) as e:
        MultiCloud(cfg).upload_to_cloud("p", str(tmp_path), "f.json")
    by = {r.provider: r for r in e.value.results}
    assert by["LOCAL"].status == "uploaded" and by["LOCAL2"].status == "failed"
    assert "LOCAL2 bucket 'ml-analytics'" in str(e.value)
    assert (tmp_path / "one/ml-analytics/p/f.json").exists()


def test_sections_filter_and_errors(tmp_path, cleanup_registry):
    cfg, _ = two_locals(tmp_path)
    assert MultiCloud(cfg, sections=["local2"]).sections == ["LOCAL2"]
    only_common = tmp_path / "x.ini"
    only_common.write_text("[COMMON]\nx = 1\n")
    with pytest.raises(ConfigError, match="no storage provider configured"):
        MultiCloud(only_common)
    with pytest.raises(LocalFileError):
        MultiCloud(cfg).upload_to_cloud("p", str(tmp_path), "missing.json")


def test_batch_upload_skips_special_files_in_a_folder_and_says_so(tmp_path):
    import os

    d = tmp_path / "d"
    d.mkdir()
    (d / "good.json").write_text("{}")
    os.mkfifo(d / "pipe")
    cfg = tmp_path / "c.ini"
    cfg.write_text(f"[LOCAL]\nroot = {tmp_path}/s\n")
    results = MultiCloud(cfg).upload([d], "p")
    assert [(r.key, r.status) for r in results] == [("p/pipe", "skipped"), ("p/good.json", "uploaded")]
    assert "is a FIFO" in results[0].error and str(d / "pipe") in results[0].error
    with pytest.raises(LocalFileError, match="FIFO"):  # named explicitly: refused before anything is sent
        MultiCloud(cfg).upload([d / "pipe", d / "good.json"], "q")
    assert not (tmp_path / "s/ml-analytics/q").exists()


@pytest.mark.parametrize("line,key", [("retry_timeout = soon", "retry_timeout"), ("concurrency = 0", "concurrency"),
                                      ("memory_limit_mib = 1", "memory_limit_mib")])
def test_bad_common_settings_fail_at_construction_even_if_no_provider_reads_them(tmp_path, line, key):
    p = tmp_path / "c.ini"
    p.write_text(f"[COMMON]\n{line}\n[LOCAL]\nroot = {tmp_path}\n")
    with pytest.raises(ConfigError) as e:
        MultiCloud(p)
    assert f"[COMMON] {key}" in str(e.value) and str(p) in str(e.value)
