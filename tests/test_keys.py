import pytest

from ml_analytics.errors import InvalidKeyError
from ml_analytics.keys import MAX_KEY_BYTES, normalize_prefix, object_key


@pytest.mark.parametrize("prefix,name,key", [
    ("reports", "x.json", "reports/x.json"),
    ("reports/", "x.json", "reports/x.json"),
    ("/reports//2026/", "/x.json".lstrip("/"), "reports/2026/x.json"),
    ("", "x.json", "x.json"),
    (None, "a/b/x.json", "a/b/x.json"),
    ("./p/./q", "x.json", "p/q/x.json"),
    ("unicodé/データ", "ファイル.json", "unicodé/データ/ファイル.json"),
    ("win\\style", "x.json", "win/style/x.json"),
])
def test_one_join_rule(prefix, name, key):
    assert object_key(prefix, name) == key


@pytest.mark.parametrize("prefix,name,fragment", [
    ("a/../b", "x", "'..'"),
    ("a", "../x", "'..'"),
    ("a", "/etc/passwd", "absolute"),
    ("a", "C:\\x", "absolute"),
    ("a", "x\x00y", "NUL"),
    ("a\x00", "x", "NUL"),
    ("a", "x\ny", "line break"),
    ("a", "", "empty"),
    ("a", "bad\udcffname", "UTF-8"),
])
def test_refused_keys_name_the_problem(prefix, name, fragment):
    with pytest.raises(InvalidKeyError) as e:
        object_key(prefix, name)
    assert fragment in str(e.value)


def test_key_length_limit_is_in_utf8_bytes():
    assert object_key("p", "é" * 510) == "p/" + "é" * 510  # 2 + 1020 bytes
    with pytest.raises(InvalidKeyError, match=str(MAX_KEY_BYTES)):
        object_key("p", "é" * 512)


def test_normalize_prefix():
    assert normalize_prefix("") == ""
    assert normalize_prefix("/a//b/") == "a/b/"
