import os
from pathlib import Path

import pytest

from ml_analytics.cloud_storage.registry import registry
from ml_analytics.config import EMBEDDED_NAME, Config
from ml_analytics.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent


def load(path=None, env=None):
    return Config.load(path, env=env or {}, known_sections=tuple(registry.sections()), embedded_default=True)


def test_embedded_default_is_one_local_store(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = load()
    assert cfg.path == EMBEDDED_NAME
    assert cfg.sections() == ["LOCAL"]
    assert not cfg.is_blank("LOCAL")


def test_lookup_order(tmp_path, monkeypatch, write_config):
    monkeypatch.chdir(tmp_path)
    local = write_config("[LOCAL]\nroot = from-cwd\n")
    other = write_config("[LOCAL]\nroot = from-env\n", name="other.ini")
    explicit = write_config("[LOCAL]\nroot = explicit\n", name="explicit.ini")
    assert load().get("LOCAL", "root") == "from-cwd"
    assert load(env={"ML_ANALYTICS_CONFIG": str(other)}).get("LOCAL", "root") == "from-env"
    assert load(explicit, env={"ML_ANALYTICS_CONFIG": str(other)}).get("LOCAL", "root") == "explicit"
    local.unlink()
    assert load().path == EMBEDDED_NAME


def test_seed_sample_shape_reports_placeholders_by_section_and_key():
    cfg = load(REPO / "config.sample")
    for section in ("COMMON", "LOCAL", "AWS", "ORACLE", "S3", "GCP", "AZURE", "DRUID"):
        assert cfg.has_section(section), section
    with pytest.raises(ConfigError) as e:
        cfg.get("AWS", "access_key")
    msg = str(e.value)
    assert "[AWS] access_key" in msg and "config.sample" in msg and "placeholder" in msg
    assert "ml_AWS_access_key" not in msg  # names the key, never echoes the value


def test_extended_interpolation_and_env_override(write_config):
    p = write_config("[COMMON]\nbase = reports\n[LOCAL]\nroot = ${COMMON:base}/store\nbucket_name =\n")
    cfg = load(p, env={"ML_ANALYTICS_LOCAL_BUCKET_NAME": "from-env", "ML_ANALYTICS_AWS_BUCKET_NAME": "b"})
    assert cfg.get("LOCAL", "root") == "reports/store"
    assert cfg.get("LOCAL", "bucket_name") == "from-env"
    assert not cfg.has_section("AWS") and cfg.ignored_env == ["ML_ANALYTICS_AWS_BUCKET_NAME"]  # never adds one


def test_empty_values_are_unset_and_all_empty_section_is_blank(write_config):
    cfg = load(write_config("[AWS]\naccess_key =\nbucket_name =   \n[LOCAL]\n"))
    assert cfg.get("AWS", "access_key") is None
    assert cfg.is_blank("AWS") and not cfg.is_blank("LOCAL")
    assert cfg.values("AWS") == {}


@pytest.mark.parametrize("text,fragment", [
    ("[LOCAL\nroot = x\n", "line 1: no valid [SECTION] header"),
    ("[LOCAL]\nroot = x\n  indented junk\n[X]\n=novalue\n", "malformed INI at line 5"),
    ("root = x\n", "no valid [SECTION] header"),
    ("[LOCAL]\n[LOCAL]\n", "[LOCAL] appears twice"),
    ("[LOCAL]\nroot = a\nroot = b\n", "[LOCAL] root: line 3: key appears twice"),
    ("[LOCAL]\nroot = ${NOPE:x}\n", "[LOCAL] root: refers to a missing key"),
    ("[LOCAL]\nroot = a$b\n", "[LOCAL] root: has a bad ${...} reference"),
    ("[LOCAL]\nroot = {{ ml_LOCAL_root }}\n", "[LOCAL] root: still holds an unrendered"),
])
def test_every_error_names_file_section_key(write_config, text, fragment):
    p = write_config(text)
    with pytest.raises(ConfigError) as e:
        cfg = load(p)
        cfg.values("LOCAL")
    assert fragment in str(e.value)
    assert str(p) in str(e.value)


def test_missing_unreadable_and_directory_config(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load(tmp_path / "nope.ini")
    with pytest.raises(ConfigError, match="is a directory"):
        load(tmp_path)
    bad = tmp_path / "bin.ini"
    bad.write_bytes(b"[LOCAL]\nroot = \xff\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load(bad)
    if os.geteuid() != 0:  # root reads everything
        locked = tmp_path / "locked.ini"
        locked.write_text("[LOCAL]\n")
        locked.chmod(0)
        with pytest.raises(ConfigError, match="not readable"):
            load(locked)


def test_placeholder_from_env_is_refused_too(write_config):
    cfg = load(write_config("[LOCAL]\n"), env={"ML_ANALYTICS_LOCAL_ROOT": "{{ x }}"})
    with pytest.raises(ConfigError, match=r"\$ML_ANALYTICS_LOCAL_ROOT"):
        cfg.get("LOCAL", "root")


def test_secrets_include_declared_and_secret_looking_keys(write_config):
    p = write_config("[COMMON]\ns = sekrit-indirect\n[AWS]\nsecret_access_key = ${COMMON:s}\n"
                     "[DRUID]\npassword = hunter22\n[LOCAL]\nroot = not-a-secret\n")
    secrets = load(p).secrets(registry.secret_keys())
    assert {"sekrit-indirect", "hunter22"} <= secrets
    assert "not-a-secret" not in secrets


def test_world_readable_credentials_warn(write_config):
    p = write_config("[AWS]\nsecret_access_key = abcdefgh\n", mode=0o644)
    assert "chmod 600" in load(p).permission_warning()
    p.chmod(0o600)
    assert load(p).permission_warning() is None
