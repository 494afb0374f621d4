"""The texts ``ml-analytics scaffold provider`` fills in: a provider module, its conformance test, a
pyproject.toml, and the deployment's pieces (config.sample section, the sunbird-devops role's
variables and config.j2 branch, the ml-analytics-cloud role's variables).

Placeholders are ``__WORD__`` tokens, replaced by :func:`fill`; everything else is literal.
"""

from __future__ import annotations

PROVIDER = '''"""[__SECTION__] for ml-analytics-cloud, written by `ml-analytics scaffold provider __NAME__`.

Fill in what is marked TODO: client(), then put_file (the upload), stat, list and delete, and the
store's error codes in ERROR_CODES. Then run the conformance suite in tests/test___MODULE__.py against
a real server of this cloud: it is the suite every built-in provider passes.

This one file is the whole provider. ml-analytics finds it in the deployment's cloud_storage/ folder
([COMMON] cloud_module_path: the ml-analytics-cloud Ansible role copies it there), in a folder named by
$ML_ANALYTICS_PROVIDER_PATH, or installed as a package (pip install .; pyproject.toml registers it).
Nothing else changes: no elif in cloud.py, no Druid code (declare Locatable or SignedUrls instead).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from ml_analytics.cloud_storage import CloudProvider, ObjectInfo, Option, StoredObject
from ml_analytics.errors import StorageError, error_class, one_line, storage_error
from ml_analytics.source import SourceFile

# The store's own error codes that say more than the HTTP status, e.g. {"NoSuchBucket":
# BucketNotFoundError, "InvalidAccessKeyId": AuthenticationError} (from ml_analytics.errors). The status
# alone is read through ml_analytics.errors.STATUS_ERRORS: 401, 403, 404, 409, 412, 408/429/5xx retried.
ERROR_CODES: dict[str, type[StorageError]] = {}


class __CLASS__(CloudProvider):
    section = "__SECTION__"
    description = "__DESCRIPTION__"
    uri_scheme = "__SCHEME__"
    # What it can do beyond the core methods (protocols of ml_analytics.cloud_storage.capabilities):
    # ReadBack (get_bytes), Locatable (location(): Druid reads the objects natively), SignedUrls
    # (sign_url: Druid reads pre-signed URLs), StreamUpload, Multipart, BatchCleanup.
    capabilities = frozenset()
    options = (
__OPTIONS__
    )

    def __init__(__INIT_ARGS__):
__INIT_BODY__
        self._client = None

    def client(self):
        """This cloud's SDK client, made on first use in the process that uses it. Import the SDK here,
        not at the top of the file: every ml-analytics command imports the providers it finds."""
        if self._client is None:
            raise NotImplementedError("[__SECTION__] client(): TODO build the SDK client")
        return self._client

    # -- the core every provider implements ------------------------------------------------------------
    def put_file(self, path: str | os.PathLike, key: str) -> StoredObject:
        """Store the file at ``key``, whole or not at all, with a checksum the store verifies (src.md5)."""
        src = SourceFile(path)
        with self.translating_errors(key, writing=True):
            data = src.read_all()  # the whole file, read once (src.chunks() for big files)
            raise NotImplementedError("[__SECTION__] put_file: TODO send data to key, with its MD5")
        return StoredObject(self.section, key, self.uri(key), len(data), src.md5)

    def stat(self, key: str) -> ObjectInfo | None:
        """The object's size (and md5 or etag where the store keeps them), or None when there is none."""
        with self.translating_errors(key):
            raise NotImplementedError("[__SECTION__] stat: TODO")

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object whose key starts with ``self.list_prefix(prefix)``."""
        with self.translating_errors(prefix):
            raise NotImplementedError("[__SECTION__] list: TODO")
            yield from ()  # keeps this a generator; yields nothing

    def delete(self, key: str) -> None:
        """Remove the object; deleting one that is not there is not an error."""
        with self.translating_errors(key):
            raise NotImplementedError("[__SECTION__] delete: TODO")

    def close(self) -> None:
        self._client = None

    # -- errors: the SDK's exception to this project's typed error ------------------------------------
    def map_error(self, exc: BaseException, key: str = "", writing: bool = False) -> Exception:
        if isinstance(exc, NotImplementedError):  # a TODO above, not the store's answer
            return exc
        status, code = _status(exc), _code(exc)
        cls = ERROR_CODES.get(code or "") or error_class(status)
        summary = self.redact(f"{code or status or type(exc).__name__}: {one_line(exc, 200)}")
        return storage_error(cls, summary, where=getattr(self, "endpoint_url", None) or self.section,
                             provider=self.section, bucket=self.bucket, key=key)


def _status(exc: BaseException) -> int | None:
    """The HTTP status an SDK exception carries, where SDKs usually keep it (None: no answer at all)."""
    for value in (getattr(exc, "status", None), getattr(exc, "status_code", None), getattr(exc, "code", None)):
        if isinstance(value, int):
            return value
    response = getattr(exc, "response", None)
    if isinstance(response, dict):  # botocore
        return response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    value = getattr(response, "status_code", None) or getattr(response, "status", None)
    return value if isinstance(value, int) else None


def _code(exc: BaseException) -> str | None:
    """The store's own error code, where SDKs usually keep it."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):  # botocore
        return response.get("Error", {}).get("Code")
    for value in (getattr(exc, "error_code", None), getattr(exc, "code", None)):
        if isinstance(value, str):
            return value
    return None
'''

TEST = '''"""The conformance suite every ml-analytics provider passes, run on [__SECTION__] (written by
`ml-analytics scaffold provider __NAME__`).

Point it at a real server of this cloud (an emulator on loopback is best) through the same variables
ml-analytics reads, then run `python -m pytest` in the provider's folder:

__ENV_LIST__

The bucket is emptied before each test. Fill in read_back (with the cloud's own SDK, not the
provider), and provide the fixtures listed in `unsupported` when you can (see
ml_analytics.testing.conformance and ml_analytics.testing.proxy).
"""

from __future__ import annotations

import os
import uuid

import pytest

from ml_analytics.testing.conformance import ProviderConformance
from __MODULE__ import __CLASS__

KEYS = (__KEY_NAMES__)
REQUIRED = (__REQUIRED_NAMES__)
SECRET = (__SECRET_NAMES__)


def settings(**overrides) -> dict:
    values = {k: os.environ.get(f"ML_ANALYTICS___SECTION___{k.upper()}") or None for k in KEYS}
    missing = [f"ML_ANALYTICS___SECTION___{k.upper()}" for k in REQUIRED if not values[k]]
    if missing:
        pytest.fail(f"set {', '.join(missing)}: the server these tests run against")
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not None}


class Test__CLASS__(ProviderConformance):
    unsupported = {
        "corrupting_provider": "TODO: a provider whose traffic passes FaultProxy(corrupt=...)",
        "provider_through": "TODO: a provider whose traffic passes FaultProxy(rule)",
        "leftovers": "TODO: what a failed upload may leave in the bucket",
    }

    @pytest.fixture
    def provider(self):
        made = __CLASS__(**settings())
        for obj in list(made.list("")):  # a fresh, empty bucket for every test
            made.delete(obj.key)
        yield made
        made.close()

    @pytest.fixture
    def read_back(self, provider):
        def read(key: str) -> bytes:
            raise NotImplementedError("TODO: read the object with the cloud's own SDK")

        return read

    @pytest.fixture
    def wrong_credentials_provider(self):
        if not SECRET:
            pytest.skip("no secret key to get wrong")
        return __CLASS__(**settings(**{k: "wrong-" + uuid.uuid4().hex for k in SECRET}))

    @pytest.fixture
    def missing_bucket_provider(self):
        return __CLASS__(**settings(bucket_name="ml-analytics-missing-" + uuid.uuid4().hex[:12]))

    @pytest.fixture
    def config_text(self):
        from ml_analytics.cloud_storage import registry

        registry.register(__CLASS__)  # what the entry point or a drop-in folder does for a deployment
        yield "[__SECTION__]\\n" + "".join(f"{k} = {v}\\n" for k, v in settings().items())
        registry.unregister("__SECTION__")
'''

PYPROJECT = '''[build-system]
requires = ["setuptools>=69", "wheel"]
build-backend = "setuptools.build_meta"

[project]
name = "__DIST__"
version = "0.1.0"
description = "[__SECTION__] storage provider for ml-analytics-cloud"
requires-python = ">=3.10"
dependencies = ["ml-analytics-cloud"]  # and this cloud's SDK

[project.entry-points."ml_analytics.cloud_providers"]
__ENTRY__ = "__MODULE__:__CLASS__"

[tool.setuptools]
py-modules = ["__MODULE__"]

[tool.pytest.ini_options]
pythonpath = ["."]
testpaths = ["tests"]
'''

CONFIG_SAMPLE = '''[__SECTION__]

__SAMPLE_KEYS__
'''

DEFAULTS = '''
# [__SECTION__] for ML_Cloud_Service_Provider == '__CSP__' (ml-analytics scaffold provider __NAME__).
# Secrets come from the inventory's vault (secrets.yml), as cloud_public_storage_secret does.
__DEFAULT_VARS__
'''

BRANCH = '''{% elif ML_Cloud_Service_Provider is equalto '__CSP__' %}

[__SECTION__]

__BRANCH_KEYS__
'''

ROLE_VARS = '''# For deploy/ansible's role ml-analytics-cloud (group_vars of the ml-analytics-service hosts, or the
# play), so it keeps [__SECTION__] working after every deploy (ml-analytics scaffold provider __NAME__):
ml_analytics_cloud_sections: {__CSP__: __SECTION__}
ml_analytics_cloud_provider_files: ["__PROVIDER_FILE__"]
ml_analytics_cloud_pip_packages: []  # the SDK __MODULE__.py imports, e.g. ["some-sdk==1.2.3"]
'''


def fill(text: str, values: dict[str, str]) -> str:
    for token, value in values.items():
        text = text.replace(f"__{token}__", value)
    return text
