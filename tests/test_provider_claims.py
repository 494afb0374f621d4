"""Who may claim a config section: refused takeovers, opted-in replacements, broken providers that
fail the run instead of vanishing, and drop-in folders loaded without a reinstall."""

from __future__ import annotations

import textwrap

from conftest import EXAMPLE_DATA

PROVIDER = textwrap.dedent('''
    from ml_analytics.cloud_storage.base import CloudProvider, ObjectInfo, Option, StoredObject
    from ml_analytics.source import SourceFile

    class {cls}(CloudProvider):
        section = "{section}"
        {extra}
        options = (Option("bucket_name", required=True, arg="bucketName"),
                   Option("access_key", secret=True, arg="accessKey"),
                   Option("secret_access_key", secret=True, arg="secretAccessKey"),
                   Option("region_name", arg="regionName"), Option("endpoint_url", arg="endpoint_url"))

        def __init__(self, bucketName, accessKey=None, secretAccessKey=None, regionName=None, endpoint_url=None):
            self.bucket = bucketName
            self._secret_key = secretAccessKey

        def put_file(self, path, key):
            src = SourceFile(path)
            data = src.read_all()
            with open("{sink}", "ab") as fh:
                fh.write(("%s %s\\n" % (key, self._secret_key)).encode())
            return StoredObject(self.section, key, self.uri(key), len(data), src.md5)

        {methods}
''')
METHODS = '''def stat(self, key):
            return None

    def list(self, prefix=""):
        return iter(())

    def delete(self, key):
        pass'''


def _provider(folder, name, *, cls="Thief", section="AWS", extra="", methods=METHODS, sink):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.py").write_text(PROVIDER.format(cls=cls, section=section, extra=extra, methods=methods,
                                                       sink=sink))


def _aws_config(write_config, tmp_path):
    return write_config("[AWS]\nbucket_name = b\naccess_key = AKIAPLANTED\nsecret_access_key = PLANTED-secret-42\n"
                        "endpoint_url = http://127.0.0.1:9\n[COMMON]\nmax_retries = 0\nretry_timeout = 2\n"
                        "connect_timeout = 1\n")


def test_a_plugin_cannot_take_a_builtin_section_and_its_credentials(cli, tmp_path, write_config):
    plugins = tmp_path / "plugins"
    sink = tmp_path / "stolen.txt"
    _provider(plugins, "aaa_first", sink=sink)
    cfg = _aws_config(write_config, tmp_path)
    r = cli("upload", EXAMPLE_DATA / "sl_projects.json", "--config", cfg, "--json",
            env={"ML_ANALYTICS_PROVIDER_PATH": str(plugins)})
    assert not sink.exists(), "the plugin received the built-in's credentials"
    assert "declares section [AWS], which belongs to the built-in ml_analytics.cloud_storage.aws" in r.err
    assert str(plugins / "aaa_first.py") in r.err and "replaces = 'AWS'" in r.err
    assert r.json["results"][0]["provider"] == "AWS"  # the built-in did the work (and failed: no server)
    assert "PLANTED-secret-42" not in r.out + r.err


def test_a_builtin_is_replaced_only_by_opt_in_and_that_is_announced_every_run(cli, tmp_path, write_config):
    plugins = tmp_path / "plugins"
    sink = tmp_path / "sink.txt"
    _provider(plugins, "myaws", extra='replaces = "AWS"', sink=sink)
    cfg = _aws_config(write_config, tmp_path)
    env = {"ML_ANALYTICS_PROVIDER_PATH": str(plugins)}
    for _ in range(2):
        r = cli("upload", EXAMPLE_DATA / "sl_projects.json", "--config", cfg, env=env)
        assert r.code == 0, r.err
        assert f"provider [AWS] is the one from {plugins / 'myaws.py'}, which replaces the built-in" in r.err
    assert sink.read_text().count("sl_projects.json") == 2


def test_two_plugins_claiming_one_section_make_it_an_error_naming_both(cli, tmp_path, write_config):
    plugins = tmp_path / "plugins"
    sink = tmp_path / "sink.txt"
    _provider(plugins, "one", cls="One", section="TWIN", sink=sink)
    _provider(plugins, "two", cls="Two", section="TWIN", sink=sink)
    cfg = write_config("[TWIN]\nbucket_name = b\n")
    r = cli("upload", EXAMPLE_DATA / "sl_projects.json", "--config", cfg, env={"ML_ANALYTICS_PROVIDER_PATH": str(plugins)})
    assert r.code == 2 and not sink.exists()
    assert "section [TWIN] is declared by both" in r.err and "one.py (One)" in r.err and "two.py (Two)" in r.err
    assert "Traceback" not in r.err


def test_a_class_lacking_a_method_is_broken_at_load_and_its_section_fails(cli, tmp_path, write_config):
    plugins = tmp_path / "plugins"
    _provider(plugins, "half", cls="Half", section="HALF", methods="", sink=tmp_path / "s")
    cfg = write_config("[HALF]\nbucket_name = b\n[LOCAL]\nroot = store\n")
    env = {"ML_ANALYTICS_PROVIDER_PATH": str(plugins)}
    listed = cli("providers", env=env)
    assert "Half does not implement stat, list, delete" in listed.err
    r = cli("upload", EXAMPLE_DATA / "sl_projects.json", "--config", cfg, env=env)
    assert r.code == 2 and "[HALF]" in r.err and "does not implement stat, list, delete" in r.err
    assert not (tmp_path / "store").exists()


def test_a_section_named_like_a_broken_module_fails_the_run_with_the_import_error(cli, tmp_path, write_config):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "frob.py").write_text("import ml_analytics\nimport no_such_sdk_for_frob\n")
    env = {"ML_ANALYTICS_PROVIDER_PATH": str(plugins)}
    cfg = write_config("[FROB]\nbucket_name = b\n[LOCAL]\nroot = store\n")
    r = cli("upload", EXAMPLE_DATA / "sl_projects.json", "--config", cfg, env=env)
    assert r.code == 2, r.err
    assert "[FROB]" in r.err and "No module named 'no_such_sdk_for_frob'" in r.err
    assert not (tmp_path / "store").exists()
    # unconfigured, it is still reported on every run, and the others work
    local_only = write_config("[LOCAL]\nroot = store\n", name="local.ini")
    ok = cli("upload", EXAMPLE_DATA / "sl_projects.json", "--config", local_only, env=env)
    assert ok.code == 0 and "broken provider frob" in ok.err


def test_cloud_module_path_folder_is_loaded_without_a_reinstall(cli, tmp_path, write_config):
    folder = tmp_path / "service" / "cloud_storage"
    sink = tmp_path / "sink.txt"
    _provider(folder, "minio_store", cls="Minio", section="MINIO", sink=sink)
    (folder / "aws.py").write_text("import boto3\nclass AWS:\n    pass\n")  # the original's module: left alone
    (folder / "cloud.py").write_text("# written by ml-analytics compat install\nimport ml_analytics_nothing\n")
    cfg = write_config("[MINIO]\nbucket_name = b\n[COMMON]\ncloud_module_path = service/cloud_storage\n")
    r = cli("upload", EXAMPLE_DATA / "sl_projects.json", "--prefix", "p", "--config", cfg, "--json")
    assert r.code == 0, r.err
    assert r.json["results"][0]["provider"] == "MINIO" and "p/sl_projects.json" in sink.read_text()
    assert "broken" not in r.err
