"""Issue 21: the seams between config, engine, Druid client, plugins and the local store.

Each test here failed before its fix. Real servers where a real server plays the part (SeaweedFS,
Azurite, fake-gcs-server, the LOCAL store); a loopback stand-in (tests/stubs.py) where the case is a
server misbehaving on purpose (an endless answer, a drip, redirects, a wrong-shaped answer).
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from conftest import EXAMPLE_DATA, fresh_name
from stubs import Stub, answer, drip, endless_chunks

from ml_analytics.testing.servers import AZURITE_ACCOUNT, AZURITE_KEY

SPEC = EXAMPLE_DATA.parent / "specs" / "sl-project.json"


def _s3(seaweed, bucket="test", **over) -> str:
    keys = {"endpoint_url": seaweed.endpoint, "access_key": seaweed.access_key,
            "secret_access_key": seaweed.secret_key, "bucket_name": bucket, **over}
    return "[S3]\n" + "".join(f"{k} = {v}\n" for k, v in keys.items())


FAST = "[COMMON]\nmax_retries = 1\nretry_timeout = 5\nconnect_timeout = 2\nrequest_timeout = 4\n"


# -- success reported for work not done ---------------------------------------------------------------
@pytest.mark.parametrize("endpoint,why", [
    ("http://127.0.0.1:99999", "port"), ("http://127.0.0.1 :9000", "space"), ("http://a|b:9000", "character"),
    ("http://[::1:9000", "bracket"), ("ftp://127.0.0.1:9000", "http"), ("127.0.0.1:9000", "http")])
def test_an_endpoint_no_library_could_use_is_refused_before_any_library_sees_it(cli, write_config, seaweed,
                                                                                endpoint, why):
    cfg = write_config(_s3(seaweed, endpoint_url=endpoint))
    for args in (("upload", EXAMPLE_DATA / "sl_projects.json"), ("check",)):
        r = cli(*args, "--config", cfg, "--json")
        assert r.code == 2, (args, r.out, r.err)
        assert "[S3] endpoint_url" in r.err + r.out and why in (r.err + r.out).lower(), (args, r.err, r.out)
        assert "Traceback" not in r.err and "PanicException" not in r.err + r.out


@pytest.mark.parametrize("key", ["ACCESS_KEY", "REGION_NAME", "BUCKET_NAME"])
def test_a_control_character_in_a_value_from_the_environment_is_refused(cli, write_config, seaweed, key):
    cfg = write_config(_s3(seaweed))
    r = cli("upload", EXAMPLE_DATA / "sl_projects.json", "--config", cfg, "--json",
            env={f"ML_ANALYTICS_S3_{key}": "abc\ndef"})
    assert r.code == 2 and f"[S3] {key.lower()}" in r.err and "control character" in r.err, r.err
    assert "abc" not in r.err  # the value is never echoed


def test_a_worker_that_dies_of_anything_still_gives_its_file_a_failed_result(tmp_path):
    """A library panic (a BaseException, not an Exception) in one upload: that file fails, the others
    are stored, the totals add up, ok is false and the seed's API raises."""
    code = textwrap.dedent(f"""
        import json, sys
        from ml_analytics.cloud_storage.local import Local
        from ml_analytics.errors import UploadFailedError
        from ml_analytics.plan import plan_uploads
        from ml_analytics.transfer import TransferEngine

        class PanicException(BaseException):  # what pyo3 raises for a Rust panic
            pass

        class Panicky(Local):
            def put_bytes(self, data, key, md5=None):
                if key.endswith("sl_projects.json") and "/" not in key:
                    raise PanicException("thread panicked at 'invalid port'")
                return super().put_bytes(data, key, md5)

        store = Panicky(root={str(tmp_path / 's')!r}, bucketName="b")
        planned = plan_uploads([{str(EXAMPLE_DATA)!r}])
        results = TransferEngine({{"P": store}}).run(planned)
        print(json.dumps([(r.key, r.status, r.error) for r in results]))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    results = json.loads(out.stdout)
    assert len(results) == 3
    failed = [r for r in results if r[1] == "failed"]
    assert [r[0] for r in failed] == ["sl_projects.json"] and "PanicException" in failed[0][2]
    assert sum(r[1] == "uploaded" for r in results) == 2


def test_empty_environment_values_count_as_unset_and_overrides_are_announced(cli, tmp_path, write_config):
    store = tmp_path / "configured-store"
    cfg = write_config(f"[LOCAL]\nroot = {store}\n")
    r = cli("upload", EXAMPLE_DATA / "sl_projects.json", "--config", cfg, env={"ML_ANALYTICS_LOCAL_ROOT": ""})
    assert r.code == 0, r.err
    assert (store / "ml-analytics" / "sl_projects.json").exists() and not (tmp_path / "cloud-storage").exists()
    other = tmp_path / "from-env"
    r = cli("upload", EXAMPLE_DATA / "sl_projects.json", "--config", cfg, env={"ML_ANALYTICS_LOCAL_ROOT": str(other)})
    assert r.code == 0 and (other / "ml-analytics" / "sl_projects.json").exists()
    assert r.err.count("$ML_ANALYTICS_LOCAL_ROOT replaces [LOCAL] root") == 1, r.err


def test_an_empty_druid_url_in_the_environment_keeps_the_configured_druid(cli, tmp_path, write_config, seaweed):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from druid_double import OverlordDouble

    double = OverlordDouble(pending_seconds=0.05, running_seconds=0.05)
    try:
        cfg = write_config(f"[LOCAL]\nroot = {tmp_path / 's'}\n[DRUID]\nbatch_url = {double.batch_url}\n")
        r = cli("push", EXAMPLE_DATA / "sl_projects.json", "--spec", SPEC, "--config", cfg, "--json",
                env={"ML_ANALYTICS_DRUID_BATCH_URL": ""})
        assert r.code == 0 and r.json["druid"]["status"] == "SUCCESS", r.err
        assert double.submitted
    finally:
        double.close()


@pytest.mark.parametrize("typo,closest", [("GCS", "GCP"), ("AZUR", "AZURE"), ("Local2", "LOCAL")])
def test_an_unknown_section_is_reported_with_the_closest_provider(cli, tmp_path, write_config, typo, closest):
    cfg = write_config(f"[LOCAL]\nroot = {tmp_path / 's'}\n[{typo}]\nbucket_name = x\n[MONGO]\nurl = mongodb://h\n")
    r = cli("upload", EXAMPLE_DATA / "sl_projects.json", "--config", cfg)
    assert r.code == 0
    assert f"[{typo}]" in r.err and f"[{closest}]" in r.err and "MONGO" not in r.err, r.err
    check = cli("check", "--config", cfg, "--json")
    rows = {row["section"]: row for row in check.json["sections"]}
    assert rows[typo]["status"] == "warning" and closest in rows[typo]["message"]
    assert "MONGO" not in rows


def test_a_broken_plugin_named_unlike_its_section_fails_that_section(cli, tmp_path, write_config):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "my_company_storage.py").write_text(
        "import ml_analytics\nimport no_such_sdk_for_foo\n\nclass Foo:  # would serve [FOO]\n    section = 'FOO'\n")
    cfg = write_config(f"[FOO]\nbucket_name = b\n[LOCAL]\nroot = {tmp_path / 's'}\n")
    r = cli("upload", EXAMPLE_DATA / "sl_projects.json", "--config", cfg,
            env={"ML_ANALYTICS_PROVIDER_PATH": str(plugins)})
    assert r.code == 2, r.err
    assert "[FOO]" in r.err and "my_company_storage" in r.err and "no_such_sdk_for_foo" in r.err
    assert not (tmp_path / "s").exists()


def test_first_use_from_several_threads_at_once(tmp_path):
    cfg = tmp_path / "c.ini"
    cfg.write_text(f"[LOCAL]\nroot = {tmp_path / 's'}\n")
    code = textwrap.dedent(f"""
        import threading
        from ml_analytics.cloud_storage import MultiCloud
        errors, barrier = [], threading.Barrier(4)
        def make():
            barrier.wait()
            try:
                MultiCloud({str(cfg)!r})
            except Exception as e:
                errors.append(e)
        threads = [threading.Thread(target=make) for _ in range(4)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        print(errors)
    """)
    for _ in range(3):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert out.stdout.strip() == "[]", out.stdout + out.stderr


# -- waits and memory that nothing bounded (Druid client) ---------------------------------------------
def _druid_cfg(write_config, tmp_path, url, extra=""):
    return write_config(f"[LOCAL]\nroot = {tmp_path / 's'}\n{FAST}[DRUID]\nbatch_url = {url}/druid/indexer/v1/task\n"
                        f"{extra}")


@pytest.mark.timeout(60)
def test_an_endless_answer_is_cut_off_and_memory_stays_bounded(cli, tmp_path, write_config):
    stub = Stub(lambda m, p, h, b, conn: endless_chunks(conn))
    try:
        cfg = _druid_cfg(write_config, tmp_path, stub.url)
        started = time.monotonic()
        r = cli("druid", "status", "some-task", "--config", cfg)
        assert r.code == 1 and "larger than" in r.err and "Traceback" not in r.err, r.err
        assert time.monotonic() - started < 30
    finally:
        stub.close()


@pytest.mark.timeout(60)
def test_a_dripping_answer_ends_within_request_timeout(cli, tmp_path, write_config):
    stub = Stub(lambda m, p, h, b, conn: drip(conn, every=0.5))
    try:
        cfg = _druid_cfg(write_config, tmp_path, stub.url)
        started = time.monotonic()
        r = cli("druid", "status", "some-task", "--config", cfg)
        took = time.monotonic() - started
        assert r.code == 1 and "cannot reach" in r.err, r.err
        assert took < 4 * (1 + 1) + 8, took  # request_timeout per attempt, 2 attempts, start-up
    finally:
        stub.close()


def test_a_submission_redirected_to_the_leader_is_followed_with_its_body(cli, tmp_path, write_config):
    status = {"task": "t", "status": {"id": "t", "statusCode": "SUCCESS", "runnerStatusCode": "WAITING"}}

    def leader(m, p, h, b, conn):
        if m == "POST" and p.endswith("/task"):
            return answer(conn, 200, {"task": json.loads(b)["id"]})
        return answer(conn, 200, status if p.endswith("/status") else {})

    lead = Stub(leader)
    follower = Stub(lambda m, p, h, b, conn: answer(conn, 307, b"", {"location": f"{lead.url}{p}"}))
    try:
        cfg = _druid_cfg(write_config, tmp_path, follower.url)
        r = cli("push", EXAMPLE_DATA / "sl_projects.json", "--spec", SPEC, "--config", cfg, "--json",
                "--no-verify-rows")
        assert r.code == 0, r.err
        posted = [q for q in lead.requests if q["method"] == "POST"]
        assert posted and json.loads(posted[0]["body"])["spec"]["dataSchema"]["dataSource"] == "sl-project"
    finally:
        lead.close()
        follower.close()


def test_credentials_never_follow_a_redirect_to_another_host(cli, tmp_path, write_config):
    other = Stub(lambda m, p, h, b, conn: answer(conn, 200, {"task": "t", "status": {"statusCode": "RUNNING"}}))
    home = Stub(lambda m, p, h, b, conn: answer(conn, 302, b"", {"location": f"{other.url}{p}"}))
    try:
        cfg = _druid_cfg(write_config, tmp_path, home.url, "username = alice\npassword = PLANTED-druid-pw-7\n")
        cli("druid", "status", "t", "--config", cfg)
        assert home.requests and "authorization" in home.requests[0]["headers"]
        assert other.requests, "the redirect was not followed"
        assert all("authorization" not in q["headers"] for q in other.requests)
    finally:
        other.close()
        home.close()


@pytest.mark.parametrize("answer_doc", [[1, 2], {"status": "SUCCESS"}, {"status": {"statusCode": 7}}, "text"])
def test_a_druid_answer_of_the_wrong_shape_is_one_line_and_the_document_is_printed(cli, tmp_path, write_config,
                                                                                   answer_doc):
    def druid(m, p, h, b, conn):
        if m == "POST" and p.endswith("/task"):
            return answer(conn, 200, {"task": json.loads(b)["id"]})
        if p.endswith("/sql"):
            return answer(conn, 200, [{"cnt": 0}])
        return answer(conn, 200, answer_doc)

    stub = Stub(druid)
    try:
        cfg = _druid_cfg(write_config, tmp_path, stub.url)
        r = cli("push", EXAMPLE_DATA / "sl_projects.json", "--spec", SPEC, "--config", cfg, "--json")
        assert r.code == 1 and "Traceback" not in r.err and "unexpected" not in r.err, r.err
        d = r.json["druid"]
        assert d["status"] == "ERROR" and "DRUID" in d["errorMsg"] and r.json["summary"]["uploaded"] == 1
    finally:
        stub.close()


@pytest.mark.parametrize("name", ["bad\u0000name", "x" * 300, "tab\tname"])
def test_a_datasource_druid_cannot_take_is_refused_before_uploading(cli, tmp_path, write_config, name):
    spec = json.loads(SPEC.read_text())
    spec["spec"]["dataSchema"]["dataSource"] = name
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps(spec))
    cfg = write_config(f"[LOCAL]\nroot = {tmp_path / 's'}\n")
    r = cli("push", EXAMPLE_DATA / "sl_projects.json", "--spec", spec_file, "--config", cfg, "--json")
    assert r.code == 2 and "dataSource" in r.err and "Traceback" not in r.err, r.err
    assert not (tmp_path / "s").exists()


# -- secrets sent where they do not belong ---------------------------------------------------------------
def test_signed_urls_never_carry_a_password_from_endpoint_url(cli, tmp_path, write_config, seaweed):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from druid_double import OverlordDouble

    double = OverlordDouble(s3=seaweed, pending_seconds=0.05, running_seconds=0.05)
    try:
        endpoint = seaweed.endpoint.replace("http://", "http://user:PLANTED-url-pw-3@")
        bucket = seaweed.create_bucket(fresh_name("sig"))
        cfg = write_config(_s3(seaweed, bucket, endpoint_url=endpoint) + f"[DRUID]\nbatch_url = {double.batch_url}\n")
        r = cli("push", EXAMPLE_DATA / "sl_projects.json", "--spec", SPEC, "--config", cfg, "--json",
                "--input-source", "http", "--spec-out", tmp_path / "task.json")
        assert r.code == 0, r.err
        assert "PLANTED-url-pw-3" not in (tmp_path / "task.json").read_text()
        assert "PLANTED-url-pw-3" not in json.dumps(double.submitted)
    finally:
        double.close()


def test_no_public_object_shows_a_secret_in_its_repr(tmp_path, monkeypatch):
    from ml_analytics.cloud_storage.aws import AWS
    from ml_analytics.cloud_storage.gcp import GCP
    from ml_analytics.cloud_storage.local import Local
    from ml_analytics.cloud_storage.ms_azure import MSAzure
    from ml_analytics.cloud_storage.oracle import Oracle
    from ml_analytics.config import Config
    from ml_analytics.druid.handoff import DruidSettings
    from ml_analytics.multicloud import MultiCloud

    secret = "PLANTED-repr-secret-9"
    monkeypatch.setenv("ML_ANALYTICS_S3_SECRET_ACCESS_KEY", secret)
    monkeypatch.setenv("SOME_OTHER_TOKEN", secret)
    cfg_path = tmp_path / "c.ini"
    cfg_path.write_text(f"[LOCAL]\nroot = {tmp_path}\n[DRUID]\nbatch_url = http://u:{secret}@h:8081\n"
                        f"password = {secret}\nusername = u\n")
    sa = tmp_path / "sa.json"
    sa.write_text(json.dumps({"type": "service_account", "client_email": "a@b", "private_key": secret,
                              "token_uri": "https://oauth2.googleapis.com/token", "project_id": "p"}))
    config = Config.load(cfg_path)
    objects = [config, DruidSettings.from_config(config), DruidSettings.from_config(config).client(None),
               MultiCloud(config=config), AWS(accessKey="AKIA", secretAccessKey=secret, bucketName="b"),
               Oracle(accessKey="a", secretAccessKey=secret, bucketName="b", endpoint_url="https://h"),
               MSAzure(accountName="a", accountKey=secret, containerName="c"),
               MSAzure(accountName="a", sasToken=f"sv=1&sig={secret}", containerName="c"),
               GCP(secret_data=str(sa), bucketName="b"), Local(root=str(tmp_path))]
    objects += [o.settings for o in objects if hasattr(o, "settings") and not isinstance(o, (Config, DruidSettings))]
    for obj in objects:
        assert secret not in repr(obj) and secret not in str(obj), type(obj).__name__


def test_a_plugin_dressed_as_a_builtin_does_not_get_its_section(cli, tmp_path, write_config):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    sink = tmp_path / "stolen.txt"
    (plugins / "impostor.py").write_text(textwrap.dedent(f"""
        from ml_analytics.cloud_storage.base import CloudProvider, Option, StoredObject

        class AWS(CloudProvider):
            section = "AWS"
            options = (Option("bucket_name", required=True, arg="bucketName"),
                       Option("secret_access_key", secret=True, arg="secretAccessKey"),
                       Option("access_key", arg="accessKey"), Option("endpoint_url", arg="endpoint_url"))

            def __init__(self, bucketName, secretAccessKey=None, accessKey=None, endpoint_url=None):
                open({str(sink)!r}, "w").write(str(secretAccessKey))

            def put_file(self, path, key): ...
            def stat(self, key): ...
            def list(self, prefix=""): ...
            def delete(self, key): ...

        AWS.__module__ = "ml_analytics.cloud_storage.aws"  # dressed as the built-in
    """))
    cfg = write_config("[AWS]\nbucket_name = b\naccess_key = AKIAPLANTED\nsecret_access_key = PLANTED-aws-4\n"
                       f"endpoint_url = http://127.0.0.1:9\n{FAST}")
    r = cli("upload", EXAMPLE_DATA / "sl_projects.json", "--config", cfg, "--json",
            env={"ML_ANALYTICS_PROVIDER_PATH": str(plugins)})
    assert not sink.exists(), "the impostor got the built-in's section and secret"
    assert "belongs to the built-in" in r.err


def test_provider_code_in_a_folder_others_can_write_is_not_imported(cli, tmp_path, write_config):
    folder = tmp_path / "service" / "cloud_storage"
    folder.mkdir(parents=True)
    ran = tmp_path / "ran.txt"
    (folder / "evil.py").write_text(f"import ml_analytics\nopen({str(ran)!r}, 'w').write('ran')\n")
    folder.chmod(0o777)
    cfg = write_config(f"[LOCAL]\nroot = {tmp_path / 's'}\n[COMMON]\ncloud_module_path = service/cloud_storage\n")
    r = cli("upload", EXAMPLE_DATA / "sl_projects.json", "--config", cfg)
    assert not ran.exists()
    assert str(folder) in r.err and "writable by other users" in r.err, r.err
    allowed = write_config(f"[LOCAL]\nroot = {tmp_path / 's'}\n[COMMON]\ncloud_module_path = service/cloud_storage\n"
                           "allow_writable_module_path = true\n", name="allowed.ini")
    cli("upload", EXAMPLE_DATA / "sl_projects.json", "--config", allowed)
    assert ran.exists()


# -- the local store and local files -----------------------------------------------------------------------
def test_a_symlink_planted_in_the_bucket_cannot_make_local_write_outside_its_root(tmp_path):
    from ml_analytics.cloud_storage.local import Local
    from ml_analytics.errors import StorageError

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "r.json").write_text("precious")
    store = Local(root=str(tmp_path / "root"), bucketName="b")
    (tmp_path / "root" / "b").mkdir(parents=True)
    (tmp_path / "root" / "b" / "reports").symlink_to(elsewhere)
    src = tmp_path / "r.json"
    src.write_text("{}\n")
    with pytest.raises(StorageError, match="symbolic link"):
        store.put_file(src, "reports/r.json")
    assert (elsewhere / "r.json").read_text() == "precious" and len(list(elsewhere.iterdir())) == 1
    (tmp_path / "root" / "b" / "final.json").symlink_to(elsewhere / "r.json")  # a link at the object's own name
    store.put_file(src, "final.json")
    assert (elsewhere / "r.json").read_text() == "precious"
    assert (tmp_path / "root" / "b" / "final.json").read_text() == "{}\n"


def test_a_symlink_at_the_druid_task_temporary_is_not_followed(cli, tmp_path, write_config):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / "druid-tasks").mkdir()
    (tmp_path / "druid-tasks" / "sl-project.json.tmp").symlink_to(victim)  # the old fixed temporary name
    (tmp_path / "druid-tasks" / "sl-project.json").symlink_to(victim)  # and the final name: replaced, not followed
    cfg = write_config(f"[LOCAL]\nroot = {tmp_path / 's'}\n")
    r = cli("push", EXAMPLE_DATA / "sl_projects.json", "--spec", SPEC, "--config", cfg)
    assert r.code == 0, r.err
    assert victim.read_text() == "precious"
    assert not (tmp_path / "druid-tasks" / "sl-project.json").is_symlink()
    assert json.loads((tmp_path / "druid-tasks" / "sl-project.json").read_text())["type"] == "index_parallel"


def test_local_objects_respect_the_umask(tmp_path):
    code = (f"import os; os.umask(0o077); from ml_analytics.cloud_storage.local import Local;"
            f"Local(root={str(tmp_path / 's')!r}, bucketName='b').upload_files('p', {str(EXAMPLE_DATA)!r},"
            f" 'sl_projects.json')")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    mode = stat.S_IMODE((tmp_path / "s" / "b" / "p" / "sl_projects.json").stat().st_mode)
    assert mode == 0o600, oct(mode)


@pytest.mark.timeout(30)
def test_a_config_path_that_is_a_fifo_is_refused_at_once(cli, tmp_path):
    fifo = tmp_path / "config.ini"
    os.mkfifo(fifo)
    r = cli("check", "--config", fifo, timeout=20)
    assert r.code == 2 and str(fifo) in r.err and "not a regular file" in r.err, r.err


def test_a_name_that_cannot_be_a_key_inside_a_folder_is_skipped_not_fatal(cli, tmp_path, write_config):
    data = tmp_path / "data"
    data.mkdir()
    (data / "good.json").write_text("{}\n")
    (data / "bad\nname.json").write_text("{}\n")
    cfg = write_config(f"[LOCAL]\nroot = {tmp_path / 's'}\n")
    r = cli("upload", data, "--config", cfg, "--json")
    assert r.code == 1, r.err
    assert (tmp_path / "s" / "ml-analytics" / "good.json").exists()
    assert "line break" in r.err and "skipped" in r.err
    statuses = {x["key"]: x["status"] for x in r.json["results"]}
    assert statuses["good.json"] == "uploaded" and "skipped" in statuses.values()
    named = cli("upload", data / "bad\nname.json", "--config", cfg)
    assert named.code == 2 and "line break" in named.err


# -- exit codes and the --json document ----------------------------------------------------------------
def _push_in_the_background(tmp_path, write_config, double) -> subprocess.Popen:
    """`ml-analytics push --json` of the example into ``double`` (the Overlord double), as its own process."""
    cfg = write_config(f"[LOCAL]\nroot = {tmp_path / 's'}\n[DRUID]\nbatch_url = {double.batch_url}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ML_ANALYTICS_")}
    return subprocess.Popen([sys.executable, "-m", "ml_analytics", "push", str(EXAMPLE_DATA / "sl_projects.json"),
                             "--spec", str(SPEC), "--config", str(cfg), "--json"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_ctrl_c_during_a_druid_wait_exits_130_with_the_document(tmp_path, write_config):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from druid_double import OverlordDouble

    double = OverlordDouble(pending_seconds=60, running_seconds=60)
    try:
        proc = _push_in_the_background(tmp_path, write_config, double)
        deadline = time.time() + 30
        while time.time() < deadline and not double.submitted:
            time.sleep(0.05)
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, err
        d = json.loads(out)["druid"]
        task = double.submitted[0]["id"]
        assert d["status"] == "INTERRUPTED" and d["task"] == task and "still running" in d["errorMsg"]
        assert task in err and "Traceback" not in err
    finally:
        double.close()


def test_ctrl_c_while_the_rows_are_checked_exits_130_and_says_the_task_succeeded(tmp_path, write_config):
    """After SUCCESS, push waits (up to minutes) for Druid to serve the task's segments: Ctrl-C then stops
    at once, exit 130, saying the task succeeded but its rows were not verified."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from druid_double import OverlordDouble

    double = OverlordDouble(pending_seconds=0.1, running_seconds=0.1)
    double.serve_seconds = 600  # never served within the test
    try:
        proc = _push_in_the_background(tmp_path, write_config, double)
        deadline = time.time() + 60
        while time.time() < deadline and not any(t["status"]["statusCode"] == "SUCCESS"
                                                 for t in list(double.tasks.values())):
            time.sleep(0.05)
        time.sleep(2)  # the task's report is read; the count is being polled
        assert proc.poll() is None, proc.communicate()
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert time.monotonic() - started < 20
        assert proc.returncode == 130, err
        d = json.loads(out)["druid"]
        assert d["status"] == "INTERRUPTED" and "ended SUCCESS" in d["errorMsg"] and "not verified" in d["errorMsg"]
        assert "Traceback" not in err
    finally:
        double.close()


def test_ctrl_c_while_the_json_output_is_blocked_exits_130(tmp_path, write_config):
    data = tmp_path / "data"
    data.mkdir()
    for i in range(3000):  # a --json document far larger than a pipe's buffer
        (data / f"report-with-a-long-name-{i:05d}.json").write_text("{}\n")
    cfg = write_config(f"[LOCAL]\nroot = {tmp_path / 's'}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ML_ANALYTICS_")}
    proc = subprocess.Popen([sys.executable, "-m", "ml_analytics", "upload", str(data), "--config", str(cfg), "--json"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(3)  # blocked on the full pipe by now
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err.decode()[-500:]


def test_another_runs_live_multipart_upload_is_left_alone(tmp_path, seaweed, monkeypatch):
    """Begun before this run, no part for 12 s (a slow link): not provably abandoned at the configured
    timeouts, so this run's end-of-batch sweep leaves it alone; it is aborted once idle past them."""
    from ml_analytics.multicloud import MultiCloud

    bucket = seaweed.create_bucket(fresh_name("live"))
    client = seaweed.boto3_client()
    other = client.create_multipart_upload(Bucket=bucket, Key="p/big.bin")
    time.sleep(12)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "big.bin").write_bytes(os.urandom(12 * 1024 * 1024))
    cfg = tmp_path / "c.ini"
    cfg.write_text(_s3(seaweed, bucket, part_size_mib=5) + "[COMMON]\nrequest_timeout = 30\nretry_timeout = 30\n")
    with MultiCloud(cfg) as mc:
        assert [r.status for r in mc.upload([tmp_path / "data"], "p")] == ["uploaded"]
    open_ = [u["UploadId"] for u in client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]
    assert open_ == [other["UploadId"]]
    cfg.write_text(_s3(seaweed, bucket, part_size_mib=5) + "[COMMON]\nrequest_timeout = 2\nretry_timeout = 3\n")
    with MultiCloud(cfg) as mc:  # now idle far longer than a part could take at these timeouts
        mc.upload([tmp_path / "data"], "p")
    assert not client.list_multipart_uploads(Bucket=bucket).get("Uploads")


def test_an_aborted_multipart_upload_says_what_happened(seaweed):
    from ml_analytics.cloud_storage.s3 import S3
    from ml_analytics.errors import ConflictError

    s3 = S3(accessKey=seaweed.access_key, secretAccessKey=seaweed.secret_key, bucketName="test",
            endpoint_url=seaweed.endpoint)
    error = s3.map_error(Exception('Generic S3 error: status code: 404, body: <?xml version="1.0"?><Error>'
                                   '<Code>NoSuchUpload</Code><Message>The specified multipart upload does not exist'
                                   '</Message></Error>'), "k", writing=True)
    assert isinstance(error, ConflictError) and "aborted by someone else" in str(error)


def test_two_azure_writers_of_one_big_blob_the_loser_says_why(azurite, tmp_path):
    from ml_analytics.cloud_storage.ms_azure import MSAzure
    from ml_analytics.errors import MLAnalyticsError

    container = azurite.create_container(fresh_name("two"))
    files = []
    for i in range(2):
        f = tmp_path / f"big{i}.bin"
        f.write_bytes(bytes([i]) * (40 * 1024 * 1024))
        files.append(f)
    outcomes = []
    for _round in range(3):
        errors = []

        def write(path):
            az = MSAzure(accountName=AZURITE_ACCOUNT, accountKey=AZURITE_KEY, containerName=container,
                         endpoint_url=azurite.endpoint)
            try:
                az.put_file(path, "same/big.bin")
            except MLAnalyticsError as e:
                errors.append(str(e))

        threads = [threading.Thread(target=write, args=(f,)) for f in files]
        [t.start() for t in threads]
        [t.join() for t in threads]
        outcomes += errors
    for e in outcomes:
        assert "another writer" in e, e


def test_gcp_warns_when_tls_verification_is_off(fake_gcs, tmp_path, caplog):
    from ml_analytics.cloud_storage.gcp import GCP

    bucket = fake_gcs.create_bucket(fresh_name("tls"))
    (tmp_path / "a.json").write_text("{}\n")
    gcp = GCP(bucketName=bucket, endpoint_url=fake_gcs.endpoint, verifyTls=False)
    gcp.upload_files("p", str(tmp_path), "a.json")
    assert "TLS certificate verification is OFF" in caplog.text
