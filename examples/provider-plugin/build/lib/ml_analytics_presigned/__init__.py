"""PRESIGNED: upload with HTTP PUT to pre-signed URLs handed out by a signing service.

This is the path ml-analytics took in later releases: the job holds no cloud credentials, only
a token for the platform's signing service, which answers
``POST {service_url}/v1/cloud-services/storage/actions`` with a pre-signed URL per file:

    request:  {"request": {"op": "write", "files": [{"file": "projects/a.json", "md5": "<base64>"}]}}
    response: {"result": {"files": [{"file": "projects/a.json", "url": "https://..."}]}}

``op`` is ``write`` (PUT; the MD5 is signed into the URL, so the store rejects a corrupted body),
``read`` (GET; also what Druid's ``http`` input source reads), ``head``, ``delete``, or ``list``
(answered with ``{"result": {"objects": [{"key", "size", "etag"}]}}``).

Beyond the core contract it declares two capabilities, and ml-analytics does the rest: ``ReadBack``
(``get_bytes``: Spark manifests and ``ingest --manifest`` read through it) and ``SignedUrls``
(``sign_url``: Druid reads the objects through its ``http`` input source; this provider writes no
Druid JSON of its own).
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator

from ml_analytics.cloud_storage import CloudProvider, ObjectInfo, Option, StoredObject
from ml_analytics.cloud_storage.capabilities import ReadBack, SignedUrls
from ml_analytics.errors import (AuthenticationError, BucketNotFoundError, IntegrityError, NetworkError,
                                 ObjectNotFoundError, StorageError, TransientError)
from ml_analytics.source import SourceFile

ACTIONS_PATH = "/v1/cloud-services/storage/actions"


class Presigned(CloudProvider):
    section = "PRESIGNED"
    description = "Uploads to pre-signed URLs from a signing service (no cloud credentials on the job)."
    uri_scheme = "presigned"
    capabilities = frozenset({ReadBack, SignedUrls})
    options = (
        Option("service_url", "base URL of the signing service", required=True, arg="serviceUrl"),
        Option("token", "bearer token for the signing service", required=True, secret=True, arg="token"),
        Option("bucket_name", "bucket the service signs for (used in URIs and messages)", required=True,
               arg="bucketName"),
        Option("timeout", "seconds per request", default="60", kind="int", arg="timeout"),
    )

    def __init__(self, serviceUrl: str, token: str, bucketName: str, timeout: int = 60):  # noqa: N803
        self.service_url = serviceUrl.rstrip("/")
        self.bucket = bucketName
        self.timeout = timeout
        self._secret_token = token

    # -- the signing service ------------------------------------------------------------------------
    def _call(self, url: str, method: str = "GET", data: bytes | None = None, headers: dict | None = None):
        # Imported here, not at the top: every ml-analytics command imports installed plugins to
        # learn their sections, so a plugin's module-level imports are start-up time for all of them.
        import urllib.error
        import urllib.request

        req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return resp.status, resp.read(), resp.headers
        except urllib.error.HTTPError as e:
            return e.code, e.read(), e.headers
        except (urllib.error.URLError, OSError) as e:
            host = url.split("?")[0]
            raise NetworkError(f"cannot reach {host} ({getattr(e, 'reason', e)})", provider=self.section,
                               bucket=self.bucket) from None

    def _action(self, op: str, files: list | None = None, **extra) -> dict:
        body = json.dumps({"request": {"op": op, "files": files or [], **extra}}).encode()
        status, payload, _ = self._call(self.service_url + ACTIONS_PATH, "POST", body,
                                        {"Content-Type": "application/json",
                                         "Authorization": f"Bearer {self._secret_token}"})
        if status in (401, 403):
            raise AuthenticationError(f"signing service refused the token ({status})", provider=self.section,
                                      bucket=self.bucket)
        if status == 404:
            raise BucketNotFoundError("signing service does not know this bucket", provider=self.section,
                                      bucket=self.bucket)
        if status != 200:
            raise TransientError(f"signing service answered {status}", provider=self.section, bucket=self.bucket)
        return json.loads(payload)["result"]

    def _url(self, op: str, key: str, **fields) -> str:
        return self._action(op, [{"file": key, **fields}])["files"][0]["url"]

    def _store_error(self, status: int, payload: bytes, key: str) -> StorageError:
        text = payload.decode("utf-8", "replace")
        kw = {"provider": self.section, "bucket": self.bucket, "key": key}
        if "BadDigest" in text or "InvalidDigest" in text:
            return IntegrityError("the store rejected the body as corrupted (BadDigest)", **kw)
        if status == 403:
            return AuthenticationError("the pre-signed URL was refused (403)", **kw)
        if status >= 500:
            return TransientError(f"the store answered {status}", **kw)
        return StorageError(f"the store answered {status}", **kw)

    # -- the provider contract -------------------------------------------------------------------------
    def put_file(self, path: str | os.PathLike, key: str) -> StoredObject:
        src = SourceFile(path)
        data = src.read_all()
        md5_b64 = base64.b64encode(bytes.fromhex(src.md5)).decode()
        url = self._url("write", key, md5=md5_b64)
        status, payload, headers = self._call(url, "PUT", data, {"Content-MD5": md5_b64,
                                                                  "Content-Length": str(len(data))})
        if status != 200:
            raise self._store_error(status, payload, key)
        return StoredObject(self.section, key, self.uri(key), len(data), src.md5,
                            etag=(headers.get("ETag") or "").strip('"') or None)

    def stat(self, key: str) -> ObjectInfo | None:
        status, payload, headers = self._call(self._url("head", key), "HEAD")
        if status == 404:
            return None
        if status != 200:
            raise self._store_error(status, payload, key)
        etag = (headers.get("ETag") or "").strip('"') or None
        return ObjectInfo(key, int(headers.get("Content-Length") or 0), etag=etag)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        for obj in self._action("list", prefix=self.list_prefix(prefix))["objects"]:
            yield ObjectInfo(obj["key"], obj["size"], etag=obj.get("etag"))

    def delete(self, key: str) -> None:
        status, payload, _ = self._call(self._url("delete", key), "DELETE")
        if status not in (200, 204, 404):
            raise self._store_error(status, payload, key)

    # -- capabilities -----------------------------------------------------------------------------------
    def sign_url(self, key: str, expires_seconds: int = 6 * 3600) -> str:
        """SignedUrls: a pre-signed GET URL (the signing service decides how long it lives)."""
        return self._url("read", key)

    def get_bytes(self, key: str) -> bytes:
        """ReadBack: the object's bytes, through a pre-signed GET URL."""
        status, payload, _ = self._call(self._url("read", key))
        if status == 404:
            raise ObjectNotFoundError("no such object", provider=self.section, bucket=self.bucket, key=key)
        if status != 200:
            raise self._store_error(status, payload, key)
        return payload

    def stored_md5(self, info: ObjectInfo) -> str | None:
        """Objects are always one PUT, and a single-PUT S3 ETag is the content's MD5."""
        etag = (info.etag or "").lower()
        return etag if len(etag) == 32 and all(c in "0123456789abcdef" for c in etag) else None
