"""Bad input: one clear line on stderr naming the culprit, the documented exit code, no traceback,
nothing partial in the bucket. Each row of the matrix is one mistake a user makes."""

from __future__ import annotations

import json
import os

import pytest
from conftest import EXAMPLE_DATA, fresh_name

from ml_analytics.testing.servers import AZURITE_ACCOUNT, free_port

SECRET = "PLANTED-bad-input-secret-5e2"


@pytest.fixture
def s3_bucket(seaweed):
    return seaweed.create_bucket(fresh_name("bad"))


def s3_cfg(seaweed, bucket, **override):
    keys = {"endpoint_url": seaweed.endpoint, "access_key": seaweed.access_key,
            "secret_access_key": seaweed.secret_key, "bucket_name": bucket, "region_name": "us-east-1"}
    keys.update(override)
    return "[COMMON]\nmax_retries = 1\nretry_timeout = 3\nconnect_timeout = 2\n[S3]\n" + \
        "".join(f"{k} = {v}\n" for k, v in keys.items() if v is not None)


def _write(tmp_path, text, name="c.ini"):
    p = tmp_path / name
    p.write_text(text)
    p.chmod(0o600)
    return p


def _one_line(r):
    lines = [line for line in r.err.splitlines() if line.strip()]
    return lines


CONFIG_CASES = [
    # (id, config text builder, extra args, exit code, fragments that must appear)
    ("malformed INI", lambda s, b: "[S3\nendpoint_url = x\n", [], 2, ["no valid [SECTION] header"]),
    ("missing key", lambda s, b: s3_cfg(s, b, bucket_name=None), [], 2, ["[S3] bucket_name", "required"]),
    ("empty key", lambda s, b: s3_cfg(s, b, bucket_name=""), [], 2, ["[S3] bucket_name", "required"]),
    ("unrendered placeholder", lambda s, b: s3_cfg(s, b, access_key="{{ ml_S3_access_key }}"), [], 2,
     ["[S3] access_key", "unrendered"]),
    ("missing section for --to", lambda s, b: s3_cfg(s, b), ["--to", "AZURE"], 2, ["--to AZURE", "no [AZURE] section"]),
    ("unknown --to section", lambda s, b: s3_cfg(s, b), ["--to", "DROPBOX"], 2, ["unknown provider section [DROPBOX]"]),
    ("Azure key and SAS both", lambda s, b: f"[AZURE]\naccount_name = {AZURITE_ACCOUNT}\ncontainer_name = c\n"
     f"account_key = {SECRET}\nsas_token = sv=1&sig={SECRET}\n", [], 2, ["[AZURE]", "account_key and sas_token"]),
    ("Azure neither key nor SAS", lambda s, b: "[AZURE]\naccount_name = a\ncontainer_name = c\naccount_key =\n"
     "sas_token =\n", [], 2, ["[AZURE]", "none is set"]),
    ("GCP secret_data missing", lambda s, b: "[GCP]\nsecret_data = /nonexistent/sa.json\nbucket_name = b\n", [], 2,
     ["[GCP] secret_data", "does not exist"]),
    ("bad number", lambda s, b: s3_cfg(s, b, part_size_mib="lots"), [], 2, ["[S3] part_size_mib", "whole number"]),
    ("[COMMON] number not a number", lambda s, b: s3_cfg(s, b).replace("retry_timeout = 3", "retry_timeout = soon"),
     [], 2, ["[COMMON] retry_timeout", "expected a number, got 'soon'"]),
    ("[COMMON] negative retries", lambda s, b: s3_cfg(s, b).replace("max_retries = 1", "max_retries = -2"), [], 2,
     ["[COMMON] max_retries", "must be at least 0"]),
    ("[COMMON] zero concurrency", lambda s, b: "[COMMON]\nconcurrency = 0\n" + s3_cfg(s, b)[len("[COMMON]\n"):], [], 2,
     ["[COMMON] concurrency", "must be at least 1"]),
    ("[COMMON] memory cap too small", lambda s, b: "[COMMON]\nmemory_limit_mib = 4\n" + s3_cfg(s, b)[len("[COMMON]\n"):],
     [], 2, ["[COMMON] memory_limit_mib", "must be at least 16"]),
    ("wrong credentials", lambda s, b: s3_cfg(s, b, secret_access_key=SECRET), [], 1,
     ["S3 bucket", "wrong credentials", "SignatureDoesNotMatch"]),
    ("bucket does not exist", lambda s, b: s3_cfg(s, "no-such-bucket-x"), [], 1,
     ["bucket 'no-such-bucket-x'", "does not exist"]),
    ("endpoint refuses connections", lambda s, b: s3_cfg(s, b, endpoint_url=f"http://127.0.0.1:{free_port()}"), [], 1,
     ["cannot reach http://127.0.0.1:"]),
    ("DNS name does not resolve", lambda s, b: s3_cfg(s, b, endpoint_url="http://no-such-host.invalid:9000"), [], 1,
     ["cannot reach http://no-such-host.invalid:9000"]),
]


@pytest.mark.parametrize("case,builder,args,code,fragments", CONFIG_CASES, ids=[c[0] for c in CONFIG_CASES])
def test_config_mistakes(cli, seaweed, s3_bucket, tmp_path, case, builder, args, code, fragments):
    cfg = _write(tmp_path, builder(seaweed, s3_bucket))
    r = cli("upload", EXAMPLE_DATA / "sl_projects.json", "--config", cfg, *args)
    assert r.code == code, r.err
    assert "Traceback" not in r.text
    for fragment in fragments:
        assert fragment in r.err, (fragment, r.err)
    if code == 2:
        assert len(_one_line(r)) == 1, r.err
    assert SECRET not in r.text
    assert seaweed.boto3_client().list_objects_v2(Bucket=s3_bucket).get("KeyCount") == 0


def test_missing_and_unreadable_config(cli, tmp_path):
    r = cli("upload", EXAMPLE_DATA, "--config", tmp_path / "nope.ini")
    assert r.code == 2 and f"{tmp_path / 'nope.ini'}: config file not found" in r.err and len(_one_line(r)) == 1
    r = cli("upload", EXAMPLE_DATA, "--config", tmp_path)
    assert r.code == 2 and "is a directory" in r.err
    bad = tmp_path / "latin1.ini"
    bad.write_bytes(b"[LOCAL]\nroot = caf\xe9\n")
    r = cli("upload", EXAMPLE_DATA, "--config", bad)
    assert r.code == 2 and "not UTF-8" in r.err


def test_gcp_secret_data_malformed(cli, tmp_path):
    sa = tmp_path / "sa.json"
    sa.write_text('{"type": "service_account", "private_key": "' + SECRET + '"')
    cfg = _write(tmp_path, f"[GCP]\nsecret_data = {sa}\nbucket_name = b\n")
    r = cli("upload", EXAMPLE_DATA, "--config", cfg)
    assert r.code == 2 and "[GCP] secret_data" in r.err and "not valid JSON" in r.err and SECRET not in r.text


def _local_cfg(tmp_path):
    return _write(tmp_path, f"[LOCAL]\nroot = {tmp_path / 'store'}\n")


def _nothing_stored(tmp_path):
    store = tmp_path / "store"
    return not store.exists() or not [p for p in store.rglob("*") if p.is_file()]


def test_local_path_mistakes(cli, tmp_path):
    cfg = _local_cfg(tmp_path)
    d = tmp_path / "reports"
    d.mkdir()
    (d / "ok.json").write_text("{}\n")
    r = cli("upload", tmp_path / "absent.json", "--config", cfg)
    assert r.code == 2 and "absent.json: no such file" in r.err and len(_one_line(r)) == 1 and "Traceback" not in r.err
    outside = tmp_path / "secret-elsewhere.txt"
    outside.write_text("not for upload\n")
    (d / "link.json").symlink_to(outside)
    r = cli("upload", d, "--config", cfg)
    assert r.code == 2 and "link.json: symbolic link leads outside" in r.err and "--follow-symlinks" in r.err
    assert _nothing_stored(tmp_path)
    r = cli("upload", d, "--config", cfg, "--follow-symlinks")
    assert r.code == 0
    (d / "link.json").unlink()
    if os.geteuid() != 0:  # root reads everything
        locked = d / "locked.json"
        locked.write_text("{}")
        locked.chmod(0)
        r = cli("upload", locked, "--config", cfg)
        assert r.code == 2 and "permission denied" in r.err
        locked.unlink()


def _special_files(d, tmp_path):
    """A FIFO, a socket, a dangling link and a link loop: what a folder walk skips, with the reason."""
    import socket

    os.mkfifo(d / "pipe.json")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(d / "sock.json"))
    (d / "dangling.json").symlink_to(tmp_path / "gone.json")
    (d / "loop.json").symlink_to(d / "loop.json")
    return sock, {"pipe.json": "is a FIFO", "sock.json": "is a socket", "dangling.json": "dangling symbolic link",
                  "loop.json": "symbolic link loop"}


def test_a_folder_walk_skips_special_files_uploads_the_rest_and_exits_1(cli, tmp_path):
    cfg = _local_cfg(tmp_path)
    d = tmp_path / "reports"
    (d / "sub").mkdir(parents=True)
    (d / "ok.json").write_text("{}\n")
    (d / "sub" / "deep.json").write_text("[]\n")
    sock, expected = _special_files(d, tmp_path)
    try:
        r = cli("upload", d, "--prefix", "p", "--config", cfg, "--json")
        assert r.code == 1, r.err
        by_key = {x["key"]: x for x in r.json["results"]}
        assert by_key["p/ok.json"]["status"] == "uploaded" and by_key["p/sub/deep.json"]["status"] == "uploaded"
        for name, reason in expected.items():
            assert by_key[f"p/{name}"]["status"] == "skipped" and reason in by_key[f"p/{name}"]["error"], name
            assert f"warning: skipped {d / name}: {reason}" in r.err
        assert r.json["summary"]["skipped"] == 4 and r.json["summary"]["uploaded"] == 2 and r.json["ok"] is False
        assert (tmp_path / "store/ml-analytics/p/sub/deep.json").read_text() == "[]\n"
        for name in expected:  # named explicitly, a special file stops the run before anything is sent
            r = cli("upload", d / name, d / "ok.json", "--prefix", "explicit", "--config", cfg)
            assert r.code == 2 and reason_word(expected[name]) in r.err and len(_one_line(r)) == 1, r.err
            assert not (tmp_path / "store/ml-analytics/explicit").exists()
    finally:
        sock.close()


def reason_word(reason):
    return {"symbolic link loop": "loop", "is a socket": "not a regular file"}.get(reason, reason.split()[-1])


def test_follow_symlinks_follows_linked_folders_once_and_stops_at_loops(cli, tmp_path):
    cfg = _local_cfg(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "far.json").write_text("{}\n")
    (elsewhere / "back").symlink_to(elsewhere)  # a loop through a folder link
    d = tmp_path / "reports"
    d.mkdir()
    (d / "linked").symlink_to(elsewhere)
    r = cli("upload", d, "--prefix", "p", "--config", cfg, "--follow-symlinks", "--json")
    keys = {x["key"]: x["status"] for x in r.json["results"]}
    assert keys["p/linked/far.json"] == "uploaded"
    assert keys.get("p/linked/back") == "skipped" and r.code == 1


def test_a_colon_is_an_ordinary_name_and_control_characters_are_refused_at_planning(cli, tmp_path):
    cfg = _local_cfg(tmp_path)
    d = tmp_path / "reports"
    d.mkdir()
    (d / "2024-01-01T10:00:00.json").write_text("{}\n")
    (d / "a:b.json").write_text("{}\n")
    r = cli("upload", d, "--prefix", "p", "--config", cfg)
    assert r.code == 0, r.err
    assert (tmp_path / "store/ml-analytics/p/a:b.json").exists()
    (d / "tab\there.json").write_text("{}\n")
    r = cli("upload", d, "--prefix", "q", "--config", cfg)  # inside a folder: skipped, the rest uploaded (#21)
    assert r.code == 1 and "control character" in r.err and not (tmp_path / "store/ml-analytics/q/tab\there.json").exists()
    assert (tmp_path / "store/ml-analytics/q/a:b.json").exists()
    r = cli("upload", d / "tab\there.json", "--prefix", "n", "--config", cfg)  # named explicitly: refused
    assert r.code == 2 and "control character" in r.err and not (tmp_path / "store/ml-analytics/n").exists()


@pytest.mark.parametrize("name,fragment", [
    ("new\nline.json", "line break"),
    (os.fsdecode(b"bad-\xff-name.json"), "not valid UTF-8"),
    ("x" * 200 + "/" + "y" * 200 + "/" + "z" * 200 + "/" + "w" * 200 + "/" + "v" * 200 + "/" + "u" * 100 + ".json",
     "stores accept at most 1024"),
])
def test_file_names_that_make_bad_keys(cli, tmp_path, name, fragment):
    """Inside a folder such a file is skipped with a warning naming the rule and the rest is uploaded,
    exit 1 (#21); named explicitly it stops the run before anything is sent, exit 2."""
    cfg = _local_cfg(tmp_path)
    d = tmp_path / "reports"
    f = d / name
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text("{}\n")
    if "/" not in name:  # a long key comes from the folder walk only; a named file's key is its name
        r = cli("upload", f, "--config", cfg)
        assert r.code == 2 and fragment in r.err and "Traceback" not in r.err
        assert _nothing_stored(tmp_path)
    (d / "fine.json").write_text("{}\n")
    r = cli("upload", d, "--config", cfg)
    assert r.code == 1 and fragment in r.err and "Traceback" not in r.err
    assert (tmp_path / "store/ml-analytics/fine.json").exists()


@pytest.mark.parametrize("prefix,fragment", [("../escape", "'..' segment"), ("a/../../b", "'..' segment")])
def test_bad_prefixes(cli, tmp_path, prefix, fragment):
    r = cli("upload", EXAMPLE_DATA, "--prefix", prefix, "--config", _local_cfg(tmp_path))
    assert r.code == 2 and fragment in r.err and _nothing_stored(tmp_path)


@pytest.mark.parametrize("blob_path,file_name,fragment", [
    ("p", "/etc/passwd", "absolute"), ("p", "a\x00b.json", "NUL"), ("p", "../x.json", "'..'"),
    ("p", "reports", "is a directory"),
])
def test_seed_api_refuses_bad_names(tmp_path, blob_path, file_name, fragment):
    from ml_analytics.cloud_storage import MultiCloud
    from ml_analytics.errors import UsageError

    (tmp_path / "reports").mkdir()
    with pytest.raises(UsageError) as e:
        MultiCloud(_local_cfg(tmp_path)).upload_to_cloud(blob_path, str(tmp_path), file_name)
    assert fragment in str(e.value)
    assert _nothing_stored(tmp_path)


def test_druid_spec_mistakes(cli, tmp_path):
    cfg = _local_cfg(tmp_path)
    good = json.loads((EXAMPLE_DATA.parent / "specs" / "sl-project.json").read_text())
    for text, fragment in [("not json at all", "not valid JSON"),
                           (json.dumps({"type": "index_parallel", "spec": {"dataSchema": {}}}), "missing spec.ioConfig"),
                           (json.dumps({**good, "type": "index"}), "spec.ioConfig.type is 'index_parallel'")]:
        spec = tmp_path / "spec.json"
        spec.write_text(text)
        r = cli("push", EXAMPLE_DATA, "--spec", spec, "--config", cfg)
        assert r.code == 2 and fragment in r.err and len(_one_line(r)) == 1, r.err
        assert _nothing_stored(tmp_path)


@pytest.mark.parametrize("size", [100, 20 * 1024 * 1024], ids=["small", "big"])
def test_a_file_replaced_by_a_fifo_after_planning_is_refused_not_waited_on(tmp_path, size):
    from ml_analytics.cloud_storage.local import Local
    from ml_analytics.transfer import TransferEngine, plan_uploads

    f = tmp_path / "r.json"
    f.write_bytes(b"x" * size)
    plan = plan_uploads([f], "p")
    f.unlink()
    os.mkfifo(f)  # nobody will ever write to it: an open() that blocks would hang the batch
    results = TransferEngine({"LOCAL": Local(root=str(tmp_path / "store"))}).run(plan)
    assert results[0].status == "failed" and "FIFO" in results[0].error
    assert _nothing_stored(tmp_path)
