"""Config behaviour the switch-over depends on: no silent fallback, the environment never adds a
section to a file, a BOM, bounded [COMMON] numbers, key-file paths relative to the config."""

from __future__ import annotations

import json

import pytest

from ml_analytics.cloud_storage.cloud import MultiCloud, path_keys
from ml_analytics.cloud_storage.gcp import GCP
from ml_analytics.cloud_storage.registry import registry
from ml_analytics.config import ENVIRONMENT_NAME, Config
from ml_analytics.errors import ConfigError

PROVIDERS = tuple(registry.sections())


@pytest.fixture
def no_env(monkeypatch, tmp_path):
    import os

    for var in [v for v in os.environ if v.startswith("ML_ANALYTICS_")]:
        monkeypatch.delenv(var)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


def test_library_refuses_when_no_config_is_found(no_env, tmp_path):
    with pytest.raises(ConfigError) as e:
        MultiCloud()
    msg = str(e.value)
    assert "no configuration found" in msg and "$ML_ANALYTICS_CONFIG not set" in msg
    assert str(tmp_path / "config.ini") in msg
    assert not (tmp_path / "cloud-storage").exists()
    with pytest.raises(ConfigError, match="config file not found"):
        MultiCloud(tmp_path / "missing.ini")


def test_cli_first_run_uses_the_embedded_store_and_says_so(cli, tmp_path):
    (tmp_path / "r.json").write_text("{}\n")
    r = cli("upload", "r.json", "--json")
    assert r.code == 0 and r.json["ok"] is True  # stdout: one JSON document
    assert r.err == f"ml-analytics: config: embedded default ([LOCAL] {tmp_path / 'cloud-storage'}); no config file found\n"
    (tmp_path / "config.ini").write_text(f"[LOCAL]\nroot = {tmp_path / 'store'}\n")
    r = cli("upload", "r.json")
    assert r.code == 0 and r.err == "ml-analytics: config: config.ini\n"
    explicit = cli("upload", "r.json", "--config", tmp_path / "config.ini")
    assert explicit.code == 0 and explicit.err == ""  # named on the command line: nothing to say


def test_environment_only_configuration_still_works(no_env, tmp_path):
    no_env.setenv("ML_ANALYTICS_LOCAL_ROOT", str(tmp_path / "store"))
    (tmp_path / "r.json").write_text("{}\n")
    mc = MultiCloud()
    assert mc.config.path == ENVIRONMENT_NAME and mc.sections == ["LOCAL"]
    mc.upload_to_cloud("p", str(tmp_path), "r.json")
    assert (tmp_path / "store" / "ml-analytics" / "p" / "r.json").read_text() == "{}\n"


def test_environment_overrides_keys_of_file_sections_but_never_adds_one(tmp_path, cli):
    p = tmp_path / "c.ini"
    p.write_text("[ORACLE]\nbucket_name = from-file\naccess_key = a\n[COMMON]\n")
    env = {"ML_ANALYTICS_ORACLE_BUCKET_NAME": "from-env", "ML_ANALYTICS_AWS_ACCESS_KEY": "k",
           "ML_ANALYTICS_AWS_BUCKET_NAME": "b", "ML_ANALYTICS_COMMON_MAX_RETRIES": "3", "ML_ANALYTICS_DEBUG": "1"}
    cfg = Config.load(p, env=env, known_sections=PROVIDERS)
    assert cfg.sections() == ["ORACLE", "COMMON"]
    assert cfg.get("ORACLE", "bucket_name") == "from-env" and cfg.number("COMMON", "max_retries") == 3
    assert cfg.ignored_env == ["ML_ANALYTICS_AWS_ACCESS_KEY", "ML_ANALYTICS_AWS_BUCKET_NAME"]
    r = cli("check", "--offline", "--config", p, env={"ML_ANALYTICS_AWS_BUCKET_NAME": "b"})
    assert "ML_ANALYTICS_AWS_BUCKET_NAME ignored" in r.err and "[AWS]" not in r.out


def test_file_with_a_byte_order_mark(tmp_path):
    p = tmp_path / "c.ini"
    p.write_bytes("\ufeff[LOCAL]\nroot = r\n".encode("utf-8"))
    cfg = Config.load(p, env={}, known_sections=PROVIDERS)
    assert cfg.sections() == ["LOCAL"] and cfg.get("LOCAL", "root") == "r"


@pytest.mark.parametrize("key,value,fragment", [
    ("retry_timeout", "nan", "expected a finite number"),
    ("request_timeout", "inf", "expected a finite number"),
    ("connect_timeout", "0", "must be greater than 0"),
    ("retry_timeout", "-5", "must be greater than 0"),
    ("retry_timeout", "1e9", "must be at most 86400 seconds"),
    ("max_retries", "-1", "must be at least 0"),
    ("max_retries", "100000", "must be at most 100"),
    ("concurrency", "0", "must be at least 1"),
    ("concurrency", "2.5", "expected a whole number"),
    ("memory_limit_mib", "99999999", "must be at most 65536 MiB"),
])
def test_common_numbers_are_checked_at_load_even_unused(tmp_path, cli, key, value, fragment):
    p = tmp_path / "c.ini"
    p.write_text(f"[LOCAL]\nroot = {tmp_path}\n[COMMON]\n{key} = {value}\n")
    with pytest.raises(ConfigError) as e:
        Config.load(p, env={}, known_sections=PROVIDERS)
    assert str(e.value).startswith(f"{p}: [COMMON] {key}: ") and fragment in str(e.value)
    r = cli("check", "--offline", "--config", p)
    assert r.code == 2 and f"[COMMON] {key}" in r.err and "Traceback" not in r.err


def test_gcp_key_file_relative_to_the_config_folder_and_never_redacted(tmp_path, no_env):
    service = tmp_path / "ml-analytics-service"
    service.mkdir()
    key = {"type": "service_account", "client_email": "sa@p.iam.gserviceaccount.com", "project_id": "p",
           "private_key": "-----BEGIN PRIVATE KEY-----\nPLANTED\n-----END PRIVATE KEY-----\n",
           "token_uri": "https://oauth2.googleapis.com/token"}
    (service / "cloud_secrets.json").write_text(json.dumps(key))
    (service / "config.ini").write_text("[GCP]\nsecret_data = cloud_secrets.json\nbucket_name = b\n")
    cfg = Config.load(service / "config.ini", env={}, known_sections=PROVIDERS)
    gcp = GCP.from_config(cfg)  # working folder is tmp_path, not the service folder
    assert gcp.secret_data == str(service / "cloud_secrets.json") and gcp.project == "p"
    assert "cloud_secrets.json" not in cfg.secrets(registry.secret_keys(), path_keys())
    assert "cloud_secrets.json" in cfg.secrets(registry.secret_keys())  # the name alone looks secret
