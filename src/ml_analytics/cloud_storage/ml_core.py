"""ML_CORE: upload through ml-core-service's pre-signed URLs, the path ml-analytics-service took in release 6.0.

The job holds no cloud credential, only the platform's internal access token. For every object it asks
ml-core-service's storage actions API for a URL (``POST {url}/v1/cloud-services/storage/actions`` with
the ``internal-access-token`` header, ``"action": "signedUrl"``, the bucket, a folder path, an expiry and
``"operation": "write"`` or ``"read"``) and sends the request to that URL itself. The service signs for
the one cloud it is deployed on: Azure SAS, S3 and OCI pre-signed URLs, GCS signed URLs. Which one is
learned from the URL and from the service's ``cloudStorage`` field; nothing here is configured per cloud.

Configuration: an ``[ML_CORE]`` section (``url``, ``internal_access_token``, ``bucket_name``), or, for a
release 6.0 config.ini as the deployment renders it, no section at all: ``[ML_CORE_SERVICE_URL] url``,
``[API_HEADERS] internal_access_token`` and ``[CLOUD] container_name`` configure it (the options'
fallbacks; a key of ``[ML_CORE]`` wins over them).

What an upload does, compared with release 6.0's ``cloud.py``:

* **Every file, one PUT each**, from a file read twice: once for its MD5, then streamed with the last
  block held back until the file was read whole, found unchanged and hashed to the same MD5. A file
  that changes meanwhile is never completed, so never stored. Small files (the engine's in-memory
  path) go from memory.
* **A checksum the store verifies where the URL allows it**: ``Content-MD5`` on Azure SAS and S3/OCI
  SigV4 URLs (the service signs only the host, so the header is free to add; the store refuses a body
  that does not match). A GCS v2 URL signs Content-MD5 as empty (the service signs only the content
  type), so adding one would void the signature: there the MD5 the store reports (``x-goog-hash``) is
  compared with the file's and a mismatch is sent again. What a store reports is always compared.
* **Retries within the URL's lifetime**: one loop (:meth:`RetryPolicy.run`) over signing and sending;
  a URL about to expire is renewed before it is used again, and a store that refuses a URL (403, GCS's
  400 ExpiredToken: expired, or clocks apart) gets one fresh URL before the failure counts.
* **Nothing reported that was not done**: a URL list without this key, a URL for another key, an
  answer the store did not give: each is a failure of that file, named.
* **stat** is a ranged GET (``Range: bytes=0-0``) on a read URL: size from ``Content-Range``, the MD5
  from ``x-ms-blob-content-md5``, ``x-goog-hash`` or a single-PUT ETag, so ``--skip-existing`` works.
* The storage actions API signs read and write URLs only: there is **no list and no delete**
  (``cannot``). ``check`` therefore writes nothing: it has a write URL signed and reads the bucket
  through a read URL.

Secrets: the token goes only to the service's origin (never to a signed URL's), and no message, log
line or result holds a pre-signed URL's query string.

Expiry units: the service's cloud client counts ``expiresIn`` in minutes for Azure and GCS and in
seconds for S3 and OCI. ``expires_in`` here is seconds, converted once the cloud is known (before the
first answer it is sent as is).
"""

from __future__ import annotations

import base64
import json
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import parse_qsl, urlsplit

from ..errors import (AuthenticationError, BucketNotFoundError, ConfigError, IntegrityError, MLAnalyticsError,
                      NetworkError, NotSupportedError, ObjectNotFoundError, PermissionDeniedError, StorageError,
                      error_class, one_line, storage_error)
from ..httpclient import HttpClient, Reply, RequestFailed
from ..retry import RetryPolicy
from ..source import SourceFile
from .base import CloudProvider, ObjectInfo, Option, StoredObject
from .capabilities import ReadBack, SignedUrls

log = logging.getLogger(__name__)

ACTIONS_PATH = "/v1/cloud-services/storage/actions"
MiB = 1024 * 1024
SMALL = 8 * MiB  # up to this size a file is read into memory once and sent from there
READ_BLOCK = 8 * MiB
SINGLE_PUT_LIMIT = 5 * 1024 ** 3  # one PUT: S3's limit (Azure's Put Blob allows 5000 MiB)
# client-cloud-services, the service's cloud client, counts expiresIn in minutes for these, seconds otherwise.
MINUTE_CLOUDS = frozenset({"AZURE", "GCLOUD"})
SCHEMES = {"AZURE": "azure", "AWS": "s3", "OCI": "s3", "S3": "s3", "GCLOUD": "gs"}  # the service's inputSource URIs
CLOUDS = {"azure": "AZURE", "aws": "AWS", "oci": "OCI", "s3": "S3", "gcloud": "GCLOUD"}  # its CLOUD_STORAGE_PROVIDER
GCS_WRITE_CONTENT_TYPE = "multipart/form-data"  # what the service signs into every GCS write URL
EXPIRY_MARGIN = 30.0  # seconds: a URL this close to its end is renewed before it is used again
CLOCK_SKEW = 300.0  # seconds: a fresh URL that ended longer ago than this is useless whatever the clocks say
MAX_STAT_BODY = 64 * 1024
INTEGRITY_CODES = frozenset({"BadDigest", "InvalidDigest", "Md5Mismatch", "InvalidMd5", "Crc64Mismatch"})
BUCKET_CODES = frozenset({"NoSuchBucket", "ContainerNotFound", "ContainerBeingDeleted"})
_XML_CODE = re.compile(r"<Code>\s*([^<\s]{1,100})\s*</Code>")
_XML_MESSAGE = re.compile(r"<Message>([^<]{1,400})")
_URL_QUERY = re.compile(r"(?i)\b(https?://[^\s?'\"<>]+)\?[^\s'\"<>]*")


def without_query(text: str) -> str:
    """``text`` with every URL's query string cut off (a pre-signed URL's signature lives there)."""
    return _URL_QUERY.sub(r"\1?…", text)


def split_key(key: str) -> tuple[str, str]:
    """(folderPath, file name) for the service, which requires a non-empty folderPath and stores
    ``folderPath + name``: a key at the bucket's root is split after its first character."""
    folder, sep, name = key.rpartition("/")
    return (folder + sep, name) if sep else (key[:1], key[1:])


def _query(url: str) -> dict[str, str]:
    return {k.lower(): v for k, v in parse_qsl(urlsplit(url).query, keep_blank_values=True)}


def url_kind(url: str) -> str:
    """Which store signed ``url``, from its query: ``azure`` (SAS), ``s3v4``, ``s3v2``, ``gcs`` or ``unknown``."""
    q = _query(url)
    if "x-amz-signature" in q:
        return "s3v4"
    if "awsaccesskeyid" in q:
        return "s3v2"
    if "googleaccessid" in q or "x-goog-signature" in q:
        return "gcs"
    if "sig" in q and ("sv" in q or "sr" in q):
        return "azure"
    return "unknown"


def url_expiry(url: str) -> float | None:
    """When ``url`` stops working (epoch seconds), read from its signature's parameters; None if unknown."""
    q = _query(url)
    try:
        if "sig" in q and "se" in q:  # Azure SAS: an ISO 8601 time or date
            text = q["se"].replace("Z", "+00:00")
            when = datetime.fromisoformat(text)
            return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).timestamp()
        for prefix in ("x-amz", "x-goog"):  # SigV4 and GCS V4: signing time plus lifetime
            if f"{prefix}-date" in q and f"{prefix}-expires" in q:
                start = datetime.strptime(q[f"{prefix}-date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
                return start.timestamp() + int(q[f"{prefix}-expires"])
        if "expires" in q:  # S3 SigV2 and GCS V2: an epoch second
            return float(int(q["expires"]))
    except (ValueError, OverflowError):
        return None
    return None


@dataclass
class Signed:
    """One URL the service signed: where to send, until when, and what the service says about the object."""

    key: str
    url: str
    kind: str
    expires: float | None
    cloud: str | None
    input_uri: str | None  # the object's URI as the service names it for Druid (inputSource)

    def expiring(self, now: float | None = None) -> bool:
        return self.expires is not None and self.expires - (now or time.time()) < EXPIRY_MARGIN

    def stale(self, now: float | None = None) -> bool:
        """Ended before it was handed out, by more than two clocks may disagree: not worth sending (a big
        body to a URL the store refuses at once would end as a broken connection, not as its answer)."""
        return self.expires is not None and (now or time.time()) - self.expires > CLOCK_SKEW

    @property
    def origin(self) -> str:
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


class _Renew(Exception):
    """The store refused a URL that a fresh one may get past (expired, or clocks apart): sign again once."""

    def __init__(self, error: MLAnalyticsError):
        super().__init__(str(error))
        self.error = error


class _Resend(Exception):
    """The store reported a checksum other than the file's (possible only where no checksum could be
    sent): send the file again."""

    retryable = True

    def __init__(self, error: MLAnalyticsError):
        super().__init__(str(error))
        self.error = error


def _b64_hex(value: str | None) -> str | None:
    try:
        raw = base64.b64decode(value or "", validate=True)
    except ValueError:
        return None
    return raw.hex() if len(raw) == 16 else None


def _md5_hex(text: str | None) -> str | None:
    text = (text or "").strip().strip('"').lower()
    return text if len(text) == 32 and all(c in "0123456789abcdef" for c in text) else None


def reported_md5(reply: Reply, kind: str) -> str | None:
    """The MD5 (hex) a store's answer reports for the whole object, if it reports one."""
    h = reply.headers
    if h.get("x-ms-blob-content-md5"):
        return _b64_hex(h["x-ms-blob-content-md5"])
    for part in h.get("x-goog-hash", "").split(","):
        name, _, value = part.strip().partition("=")
        if name == "md5":
            return _b64_hex(value)
    if h.get("content-md5") and "content-range" not in h:  # Azure: the MD5 of what it stored (whole answers)
        return _b64_hex(h["content-md5"])
    if kind in ("s3v4", "s3v2", "gcs"):  # a single PUT's ETag is its MD5
        return _md5_hex(h.get("etag"))
    return None


def store_code(reply: Reply) -> tuple[str, str]:
    """(error code, first line of the message) of a store's error answer (XML body or x-ms-error-code)."""
    text = reply.body[:4096].decode("utf-8", "replace")
    found = _XML_CODE.search(text)
    code = found.group(1) if found else reply.headers.get("x-ms-error-code", "")
    found = _XML_MESSAGE.search(text)
    message = found.group(1).splitlines()[0].strip() if found else ""
    return code, message


class MLCore(CloudProvider):
    section = "ML_CORE"
    description = ("Uploads through ml-core-service's pre-signed URLs (release 6.0 deployments; no cloud "
                   "credential on the job). Azure, S3, OCI or GCS, whichever the service signs for.")
    uri_scheme = "mlcore"  # a label only: URIs use the scheme of the cloud the service signs for (azure, s3, gs)
    capabilities = frozenset({ReadBack, SignedUrls})
    cannot = {"list": "ml-core-service's storage actions API signs read and write URLs only; it cannot list",
              "delete": "ml-core-service's storage actions API signs read and write URLs only; it cannot delete"}
    reads_once = False  # a big file is read for its MD5, then again to be sent
    options = (
        Option("url", "ml-core-service base URL, e.g. http://<ingress>/ml-core (else [ML_CORE_SERVICE_URL] url)",
               required=True, kind="url", arg="url", fallback=("ML_CORE_SERVICE_URL", "url")),
        Option("internal_access_token", "the service's internal access token (else [API_HEADERS] "
               "internal_access_token)", required=True, secret=True, arg="internalAccessToken",
               fallback=("API_HEADERS", "internal_access_token")),
        Option("bucket_name", "bucket or container the service signs for (else [CLOUD] container_name)",
               required=True, arg="bucketName", fallback=("CLOUD", "container_name")),
        Option("cloud", "the cloud the service signs for: azure, aws, oci, s3 or gcloud (default: learned from "
               "its first answer)", arg="cloud"),
        Option("expires_in", "seconds each pre-signed URL is asked to live (60 to 604800)", default="3600",
               kind="int", arg="expiresIn"),
        Option("verify_tls", "verify TLS certificates", default="true", kind="bool", arg="verifyTls"),
    )

    def __init__(self, url: str | None = None, internalAccessToken: str | None = None,  # noqa: N803
                 bucketName: str | None = None, cloud: str | None = None, expiresIn: int = 3600,
                 verifyTls: bool = True, retry: RetryPolicy | None = None):
        if not url:
            raise ConfigError("url is required", section=self.section, key="url")
        if not internalAccessToken:
            raise ConfigError("internal_access_token is required", section=self.section, key="internal_access_token")
        if not bucketName:
            raise ConfigError("bucket_name is required", section=self.section, key="bucket_name")
        if cloud is not None and cloud.lower() not in CLOUDS:
            raise ConfigError(f"expected one of {', '.join(CLOUDS)}, got {cloud!r}", section=self.section, key="cloud")
        if not 60 <= int(expiresIn) <= 7 * 24 * 3600:
            raise ConfigError(f"must be 60 to 604800 seconds, got {expiresIn}", section=self.section, key="expires_in")
        self.url = url.rstrip("/")
        self.bucket = bucketName
        self.expires_in = int(expiresIn)
        self.verify_tls = verifyTls
        self.retry = retry or RetryPolicy()
        self._secret_token = internalAccessToken
        self._cloud = CLOUDS[cloud.lower()] if cloud else None
        self._service: HttpClient | None = None
        self._store: HttpClient | None = None
        self._lock = threading.Lock()

    # -- clients --------------------------------------------------------------------------------
    @property
    def actions_url(self) -> str:
        return self.url + ACTIONS_PATH

    @property
    def service(self) -> HttpClient:
        """Requests to ml-core-service: the token goes to its origin only."""
        with self._lock:
            if self._service is None:
                self._service = HttpClient(self.retry, verify_tls=self.verify_tls,
                                           auth={"internal-access-token": self._secret_token}, auth_origin=self.url)
            return self._service

    @property
    def store(self) -> HttpClient:
        """Requests to pre-signed URLs: no credential of ours at all (the URL is the authorisation)."""
        with self._lock:
            if self._store is None:
                self._store = HttpClient(self.retry, verify_tls=self.verify_tls)
            return self._store

    def _kw(self, key: str) -> dict:
        return {"provider": self.section, "bucket": self.bucket, "key": key}

    def _clean(self, text) -> str:
        return one_line(without_query(self.redact(str(text))), 300)

    # -- the storage actions API ------------------------------------------------------------------
    def _service_expiry(self, seconds: int | None = None) -> int:
        seconds = int(seconds or self.expires_in)
        return max(1, math.ceil(seconds / 60)) if self._cloud in MINUTE_CLOUDS else seconds

    def _service_error(self, reply: Reply | None, cause: BaseException | None, key: str) -> MLAnalyticsError:
        kw = self._kw(key)
        if reply is None:
            origin = urlsplit(self.url)
            where = f"ml-core-service at {origin.scheme}://{origin.netloc.rpartition('@')[2]}"
            return storage_error(NetworkError, self._clean(f"{type(cause).__name__}: {cause}"), where=where, **kw)
        try:
            doc = json.loads(reply.body)
        except ValueError:
            doc = None
        said = ""
        if isinstance(doc, dict):
            message = doc.get("message")
            if isinstance(message, list):  # express-validator's errors: [{param, msg, ...}]
                said = "; ".join(str(m.get("msg") if isinstance(m, dict) else m) for m in message[:5])
            elif message:
                said = str(message)
            if doc.get("status") and not isinstance(doc.get("status"), int):
                said = f"{doc['status']}: {said}" if said else str(doc["status"])
        else:
            said = reply.body[:200].decode("utf-8", "replace")
        summary = self._clean(f"ml-core-service answered {reply.status}" + (f": {said}" if said.strip() else ""))
        if reply.status == 401:
            return storage_error(AuthenticationError, f"{summary}; check the internal access token", **kw)
        if reply.status == 404:
            return StorageError(f"{summary}; no storage actions API at {self.actions_url}: check the url "
                                f"([ML_CORE] url or [ML_CORE_SERVICE_URL] url)", **kw)
        cls = error_class(reply.status)
        return StorageError(summary, **kw) if cls is StorageError else storage_error(cls, summary, **kw)

    def sign(self, key: str, operation: str, expires_seconds: int | None = None) -> Signed:
        """One URL for ``key`` (``operation`` ``write`` or ``read``), asked once (the caller's loop retries)."""
        folder, name = split_key(key)
        body = {"request": {"files": [name]}, "action": "signedUrl", "folderPath": folder, "bucketName": self.bucket,
                "expiresIn": self._service_expiry(expires_seconds), "operation": operation}
        try:
            reply = self.service.request("POST", self.actions_url, headers={"content-type": "application/json"},
                                         body=json.dumps(body).encode(), attempts=1, accept=lambda r: True)
        except RequestFailed as e:
            if e.reply is not None:
                raise self._service_error(e.reply, None, key) from None
            raise self._service_error(None, e.cause, key) from None
        if reply.status != 200:
            raise self._service_error(reply, None, key)
        try:
            files = json.loads(reply.body)["result"]["files"]
            if not isinstance(files, list):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            raise StorageError("ml-core-service answered 200 without result.files; not sent", **self._kw(key)) from None
        entry = next((f for f in files if isinstance(f, dict) and f.get("file") == key), None)
        if entry is None:
            raise StorageError(f"ml-core-service signed {len(files)} URL(s) for the 1 file asked, none for this key; "
                               f"not sent", **self._kw(key))
        url = entry.get("url")
        if isinstance(url, list) and len(url) == 1:  # the GCS client hands back getSignedUrl's [url] as it is
            url = url[0]
        if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
            raise StorageError("ml-core-service gave no usable URL for this key; not sent", **self._kw(key))
        cloud = str(entry.get("cloudStorage") or "").upper()
        if cloud in SCHEMES:
            self._cloud = cloud
        input_uri = None
        source = entry.get("inputSource")
        if isinstance(source, dict) and isinstance(source.get("uris"), list) and source["uris"]:
            candidate = str(source["uris"][0])
            if candidate.endswith(f"://{self.bucket}/{key}"):
                input_uri = candidate
        return Signed(key, url, url_kind(url), url_expiry(url), cloud or None, input_uri)

    # -- answers of the store ---------------------------------------------------------------------
    def _no_answer(self, signed: Signed, failure: RequestFailed) -> MLAnalyticsError:
        cause = failure.cause
        error = storage_error(NetworkError, self._clean(f"{type(cause).__name__}: {cause}"),
                              where=f"the store at {signed.origin}", **self._kw(signed.key))
        if failure.final:  # a refused certificate, an oversized answer: the same next time
            return StorageError(str(error.detail), **self._kw(signed.key))
        return error

    def _store_error(self, reply: Reply, signed: Signed, *, writing: bool) -> MLAnalyticsError:
        code, message = store_code(reply)
        kw = self._kw(signed.key)
        summary = self._clean(f"{reply.status}" + (f" {code}" if code else "") + (f": {message}" if message else ""))
        if code in INTEGRITY_CODES or (reply.status == 400 and "md5" in message.lower()):
            return storage_error(IntegrityError, summary, **kw)
        if code in BUCKET_CODES:
            return storage_error(BucketNotFoundError, summary, **kw)
        if reply.status in (401, 403):
            return storage_error(PermissionDeniedError, f"the store refused the pre-signed URL: {summary}", **kw)
        cls = error_class(reply.status)
        if cls is ObjectNotFoundError and writing:
            cls = BucketNotFoundError
        return StorageError(summary, **kw) if cls is StorageError else storage_error(cls, summary, **kw)

    @staticmethod
    def _refused_url(reply: Reply) -> bool:
        """An answer a fresh URL may get past: 401/403 (an expired SAS or SigV4 URL, clocks apart) or GCS's
        400 ExpiredToken."""
        if reply.status in (401, 403):
            return True
        code, message = store_code(reply)
        return reply.status == 400 and (code == "ExpiredToken" or "expired" in message.lower())

    def _run(self, key: str, operation: str, send: Callable[[Signed], object]):
        """The one retry loop of an operation on ``key``: sign (again when the URL is about to expire), then
        ``send(signed)``; transient failures retried under the policy. A URL the store refuses is replaced
        by a fresh one at once, once per operation (not a retry: an expired URL is not a failing store); a
        fresh URL refused too is the answer."""
        state: dict = {"signed": None, "renewed": False}

        def attempt(_n: int):
            while True:
                signed = state["signed"]
                if signed is None or signed.expiring():
                    signed = state["signed"] = self.sign(key, operation)
                try:
                    if signed.stale():
                        ended = datetime.fromtimestamp(signed.expires, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
                        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                        raise _Renew(StorageError(f"ml-core-service handed out a URL that had ended at {ended} (this "
                                                  f"machine's clock: {now}); clocks apart?", **self._kw(key)))
                    return send(signed)
                except _Renew as e:
                    if state["renewed"]:
                        raise e.error from None
                    log.info("%s: the store refused the URL for %s (%s); asking for a fresh one", self.section, key,
                             e.error.detail)
                    state["signed"], state["renewed"] = None, True

        try:
            return self.retry.run(attempt, what=f"{self.section} {operation} {key}")
        except _Resend as e:
            raise e.error from None

    def _exchange(self, signed: Signed, method: str, *, headers=None, body=b"", length: int | None = None,
                  max_body: int | None = None) -> Reply:
        try:
            return self.store.request(method, signed.url, headers=headers, body=body, length=length, attempts=1,
                                      accept=lambda r: True, max_body=max_body)
        except RequestFailed as e:
            if e.reply is not None:
                return e.reply
            raise self._no_answer(signed, e) from None

    # -- the provider contract ------------------------------------------------------------------
    def _headers(self, signed: Signed, md5: str) -> dict[str, str]:
        import mimetypes  # here, not at the top: every run that resolves providers imports this module

        if signed.kind == "gcs":
            return {"content-type": GCS_WRITE_CONTENT_TYPE}
        if signed.kind == "unknown":  # what release 6.0 sent to every URL
            return {"x-ms-blob-type": "BlockBlob", "content-type": GCS_WRITE_CONTENT_TYPE}
        headers = {"content-type": mimetypes.guess_type(signed.key)[0] or "application/octet-stream"}
        if signed.kind == "azure":
            headers["x-ms-blob-type"] = "BlockBlob"
        if signed.kind in ("azure", "s3v4"):  # the store checks it; a SigV2 URL signs Content-MD5, so not there
            headers["content-md5"] = base64.b64encode(bytes.fromhex(md5)).decode()
        return headers

    def _put(self, key: str, size: int, md5: str, body: Callable[[], object]) -> StoredObject:
        if size > SINGLE_PUT_LIMIT:
            raise StorageError(f"{size} bytes is more than one PUT to a pre-signed URL may carry "
                               f"({SINGLE_PUT_LIMIT} bytes); not sent", **self._kw(key))

        def send(signed: Signed) -> StoredObject:
            reply = self._exchange(signed, "PUT", headers=self._headers(signed, md5), body=body(), length=size)
            if reply.status not in (200, 201):
                error = self._store_error(reply, signed, writing=True)
                if self._refused_url(reply):
                    raise _Renew(error)
                raise error
            stored = reported_md5(reply, signed.kind)
            if stored is not None and stored != md5:
                raise _Resend(IntegrityError(f"the store reports MD5 {stored} for what it stored, the file's is {md5}",
                                             **self._kw(key)))
            etag = (reply.headers.get("etag") or "").strip('"') or None
            return StoredObject(self.section, key, signed.input_uri or self.uri(key), size, md5, etag=etag)

        return self._run(key, "write", send)

    def put_bytes(self, data: bytes, key: str, md5: str | None = None) -> StoredObject:
        import hashlib

        md5 = md5 or hashlib.md5(data).hexdigest()
        return self._put(key, len(data), md5, lambda: data)

    def put_file(self, path, key: str) -> StoredObject:
        src = SourceFile(path)
        if src.size <= SMALL:
            data = src.read_all()
            return self._put(key, len(data), src.md5, lambda: data)
        for _ in src.chunks(READ_BLOCK):  # first read: the MD5 the store will check
            pass
        md5, size = src.md5, src.size
        return self._put(key, size, md5, lambda: _held_back(path, md5))

    def buffer_bytes(self, size: int) -> int:
        return size if size <= SMALL else 2 * READ_BLOCK  # the block sent and the one held back

    def stat(self, key: str) -> ObjectInfo | None:
        def send(signed: Signed) -> ObjectInfo | None:
            reply = self._exchange(signed, "GET", headers={"range": "bytes=0-0"}, max_body=MAX_STAT_BODY)
            if reply.status in (200, 206, 416):
                return self._info(key, reply, signed)
            code, _ = store_code(reply)
            if reply.status == 404 and code not in BUCKET_CODES:
                return None
            error = self._store_error(reply, signed, writing=False)
            if self._refused_url(reply):
                raise _Renew(error)
            raise error

        return self._run(key, "read", send)

    def _info(self, key: str, reply: Reply, signed: Signed) -> ObjectInfo:
        total = reply.headers.get("content-range", "").rpartition("/")[2].strip()
        if total.isdigit():
            size = int(total)
        elif reply.status == 416:  # the first byte of an object is out of range only when it has none
            size = 0
        elif reply.status == 200 and reply.headers.get("content-length", "").isdigit():
            size = int(reply.headers["content-length"])
        else:
            raise StorageError(f"the store answered {reply.status} to a ranged read without the object's size",
                               **self._kw(key))
        md5 = "d41d8cd98f00b204e9800998ecf8427e" if size == 0 else reported_md5(reply, signed.kind)
        etag = (reply.headers.get("etag") or "").strip('"') or None
        return ObjectInfo(key, size, etag=etag, md5=md5)

    def stored_md5(self, info: ObjectInfo) -> str | None:
        return info.md5

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        raise NotSupportedError(self.cannot["list"], provider=self.section, bucket=self.bucket)

    def delete(self, key: str) -> None:
        raise NotSupportedError(self.cannot["delete"], **self._kw(key))

    def uri(self, key: str) -> str:
        """The object's URI as the service names it for Druid: ``azure://``, ``s3://`` or ``gs://`` + bucket +
        key, by the cloud it signs for (asked of it once when neither configured nor seen yet)."""
        if self._cloud is None:
            self.sign(".ml-analytics-check/which-cloud", "read")  # learns cloudStorage; nothing is read
            if self._cloud is None:
                raise StorageError("ml-core-service does not say which cloud it signs for (cloudStorage); set "
                                   "[ML_CORE] cloud", provider=self.section, bucket=self.bucket)
        return f"{SCHEMES[self._cloud]}://{self.bucket}/{key}"

    def check(self) -> str:
        """The service signs writes for the bucket and the bucket answers through a read URL. Nothing is
        written: a probe object could not be deleted."""
        import uuid

        probe = f".ml-analytics-check/{uuid.uuid4().hex}"
        self._run(probe, "write", lambda signed: signed)
        if self.stat(probe) is not None:
            raise StorageError("a probe key that was never written exists", **self._kw(probe))
        return (f"ml-core-service signs for bucket '{self.bucket}' ({self._cloud or 'cloud not named'}); bucket "
                f"reachable through a read URL (nothing written: the service cannot delete a probe object)")

    # -- capabilities -------------------------------------------------------------------------------
    def get_bytes(self, key: str) -> bytes:
        """ReadBack: the object, through a read URL."""
        def send(signed: Signed) -> bytes:
            reply = self._exchange(signed, "GET")
            if reply.status == 200:
                return reply.body
            code, _ = store_code(reply)
            if reply.status == 404 and code not in BUCKET_CODES:
                raise ObjectNotFoundError("no such object", **self._kw(key))
            error = self._store_error(reply, signed, writing=False)
            if self._refused_url(reply):
                raise _Renew(error)
            raise error

        return self._run(key, "read", send)

    def sign_url(self, key: str, expires_seconds: int = 6 * 3600) -> str:
        """SignedUrls: a read URL the service signs for about ``expires_seconds``."""
        return self.retry.run(lambda _n: self.sign(key, "read", expires_seconds).url, what=f"{self.section} sign {key}")

    def close(self) -> None:
        with self._lock:
            clients, self._service, self._store = (self._service, self._store), None, None
        for client in clients:
            if client is not None:
                client.close()


def _held_back(path, md5: str) -> Iterator[bytes]:
    """The file's blocks for one PUT, the last one held back until the whole file was read, found
    unchanged and hashed to ``md5``: a file that changed since its MD5 was taken never completes the
    request, so the store never commits it."""
    src = SourceFile(path)
    held = None
    for block in src.chunks(READ_BLOCK):  # raises IntegrityError at the end if the file changed
        if held is not None:
            yield held
        held = block
    src.check_unchanged()
    if src.md5 != md5:
        raise IntegrityError(f"{path}: file changed while it was read (MD5 {src.md5}, {md5} before); not stored")
    if held is not None:
        yield held
