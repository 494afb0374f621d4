"""GCP: Google Cloud Storage, through google-cloud-storage (GCS's JSON API).

``secret_data`` is the path to a service-account JSON key file; it is read into this provider's
own credentials object (the original set ``GOOGLE_APPLICATION_CREDENTIALS`` for the whole
process; nothing here touches the environment). With ``endpoint_url`` and no ``secret_data``
the client is anonymous (emulators such as fake-gcs-server); with neither, Application Default
Credentials are used. Constructing the provider makes no request: the bucket is referenced,
never fetched.

Uploads send their own JSON API requests (:mod:`ml_analytics.httpclient`, with the credentials' bearer token)
under the project's retry policy (``max_retries``, ``retry_timeout``, connect and request timeouts),
each file read once; listing, stat and delete go through google-cloud-storage.

Integrity and safety: a file up to 16 MiB goes in one multipart request that declares its MD5 and
CRC32C, which GCS checks before it stores anything. A bigger one goes through a resumable session
in streamed requests of 96 MiB (what the session holds is never an object), the last one's last
block held back until the whole file was read and found unchanged: a file that changes never
completes the session, it is cancelled, and the stored object is never touched. The checksum GCS
reports (MD5 for small files, CRC32C for big ones, whose MD5 is then the one GCS computed) is compared with the file's; a mismatch deletes that
generation and fails. It can happen only where the store did not check a declared checksum before
committing: a small upload to a store that ignores them (fake-gcs-server 1.54, bundled for the
tests), or a big upload corrupted in transit, for which no checksum can be declared up front without
reading the file twice (TLS rules that out against real GCS; over plain HTTP the previous version
would be gone).
obstore's GCS store is not used because it writes through the XML API, which the local GCS
servers lack, so it could not be tested here.
"""

from __future__ import annotations

import base64
import itertools
import json
import logging
import os
import socket
import threading
import uuid
from collections.abc import Iterator

from urllib.parse import quote

from ..errors import (AlreadyExistsError, AuthenticationError, BucketNotFoundError, ConfigError, IntegrityError,
                      MLAnalyticsError, NetworkError, ObjectNotFoundError, PreconditionFailedError,
                      ProviderNotInstalledError, StorageError, TransientError, error_class, one_line, storage_error)
from ..httpclient import HttpClient, Reply, RequestFailed
from ..retry import RetryPolicy
from ..source import SourceFile
from .base import CloudProvider, ObjectInfo, Option, StoredObject
from .capabilities import CreateOnly, Locatable, ReadBack, StoreLocation

log = logging.getLogger(__name__)
MiB = 1024 * 1024
SINGLE_REQUEST_LIMIT = 16 * MiB  # up to this size: one multipart request, the file held in memory
# A resumable upload's requests: fake-gcs-server spent 11 ms of CPU per MiB on one 256 MiB request and
# 7.4 on 100 MiB ones (google-cloud-storage's default); a multiple of READ_BLOCK and of 256 KiB.
RESUMABLE_CHUNK = 96 * MiB
READ_BLOCK = 8 * MiB
assert RESUMABLE_CHUNK % READ_BLOCK == 0 and RESUMABLE_CHUNK % (256 * 1024) == 0  # whole blocks per request


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _hex(b64: str | None) -> str | None:
    return base64.b64decode(b64).hex() if b64 else None


class _Restart(Exception):
    """A resumable session failed in a way that only a new session can recover from."""

    retryable = True

    def __init__(self, error: Exception):
        super().__init__(str(error))
        self.error = error


class _Body:
    """The streamed body of a resumable upload: the file's blocks from :meth:`SourceFile.chunks`, CRC32C
    computed on the way, the last block held back until the whole file was read and found unchanged. If
    it changed, the error is kept in ``error`` and the body stops short of its declared length, so the
    store never receives the last byte and never commits."""

    def __init__(self, src: SourceFile):
        google_crc32c = _sdk("google_crc32c")

        self.src = src
        self.crc = google_crc32c.Checksum()
        self.error: Exception | None = None
        self.complete = False

    def __len__(self) -> int:
        return self.src.size

    def __iter__(self):
        held = None
        try:
            for block in self.src.chunks(READ_BLOCK):  # raises IntegrityError at the end if the file changed
                self.crc.update(block)
                if held is not None:
                    yield held
                held = block
            self.src.check_unchanged()
        except Exception as e:
            self.error = e
            raise OSError("upload body interrupted: the file changed") from None
        self.complete = True
        yield held

    @property
    def crc32c(self) -> str:
        return _b64(self.crc.digest())


_SA_FIELDS = ("type", "client_email", "private_key", "token_uri")


def load_service_account(path: str) -> dict:
    """Read and check a service-account key file; errors name ``[GCP] secret_data``, never its content."""
    try:
        with open(path, encoding="utf-8") as fh:
            info = json.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"service-account file {path} does not exist", section="GCP", key="secret_data") from None
    except IsADirectoryError:
        raise ConfigError(f"{path} is a directory, expected a service-account JSON file", section="GCP",
                          key="secret_data") from None
    except PermissionError:
        raise ConfigError(f"service-account file {path} is not readable", section="GCP", key="secret_data") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        line = getattr(e, "lineno", "?")
        raise ConfigError(f"service-account file {path} is not valid JSON (line {line})", section="GCP",
                          key="secret_data") from None
    if not isinstance(info, dict):
        raise ConfigError(f"service-account file {path} is not a JSON object", section="GCP", key="secret_data")
    missing = [f for f in _SA_FIELDS if not info.get(f)]
    if missing:
        needs = f"a service-account key needs {', '.join(_SA_FIELDS)}"
        if "account_name" in info or "account_key" in info:  # what the ml-analytics-service Ansible role writes
            raise ConfigError(f"service-account file {path} holds account_name/account_key (a storage account "
                              f"key), not a service-account key: {needs} (lacks {', '.join(missing)}); download "
                              f"the service account's JSON key", section="GCP", key="secret_data")
        raise ConfigError(f"service-account file {path} lacks {', '.join(missing)} ({needs})", section="GCP",
                          key="secret_data")
    if info["type"] != "service_account":
        raise ConfigError(f"service-account file {path} has type {info['type']!r}, expected 'service_account'",
                          section="GCP", key="secret_data")
    return info


def _sdk(module: str):
    """Import part of the GCS SDK, or say which extra installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ProviderNotInstalledError("[GCP] needs google-cloud-storage: pip install 'ml-analytics-cloud[gcp]'") \
            from None


class GCP(CloudProvider):
    section = "GCP"
    description = "Google Cloud Storage."
    extra = "gcp"
    uri_scheme = "gs"
    capabilities = frozenset({ReadBack, Locatable, CreateOnly})
    options = (
        Option("secret_data", "path to a service-account JSON key file", arg="secret_data", kind="path"),
        Option("bucket_name", "bucket", required=True, arg="bucketName"),
        Option("project", "project id (default: the key file's)", arg="project"),
        Option("endpoint_url", "JSON API endpoint (emulators); anonymous when no secret_data", arg="endpoint_url",
               kind="url"),
        Option("verify_tls", "verify TLS certificates (turning off logs a warning)", default="true", kind="bool",
               arg="verifyTls"),
    )

    def __init__(self, secret_data: str | None = None, bucketName: str | None = None,  # noqa: N803 (seed names)
                 project: str | None = None, endpoint_url: str | None = None, verifyTls: bool = True,
                 retry: RetryPolicy | None = None):
        if not bucketName:
            raise ConfigError("bucket_name is required", section=self.section, key="bucket_name")
        self.bucket = bucketName
        self.endpoint_url = endpoint_url.rstrip("/") if endpoint_url else None
        self.secret_data = secret_data
        self._secret_info = load_service_account(secret_data) if secret_data else None
        self.project = project or (self._secret_info or {}).get("project_id")
        self.verify_tls = verifyTls
        self.retry = retry or RetryPolicy()
        self._bucket = None
        self._credentials = None
        self._http: HttpClient | None = None
        self._token_lock = threading.Lock()

    @property
    def secrets(self) -> set[str]:
        info = self._secret_info or {}
        return {v for v in (info.get("private_key"), info.get("private_key_id")) if v}

    # -- client -----------------------------------------------------------------------------------
    @property
    def gcs_bucket(self):
        if self._bucket is None:
            storage = _sdk("google.cloud.storage")
            options = {"api_endpoint": self.endpoint_url} if self.endpoint_url else None
            client = storage.Client(project=self.project or "ml-analytics", credentials=self.credentials,
                                    client_options=options)
            if not self.verify_tls:
                log.warning("GCP: TLS certificate verification is OFF (verify_tls = false)")
                client._http.verify = False
            self._bucket = client.bucket(self.bucket)  # a reference: no request is made
        return self._bucket

    @property
    def credentials(self):
        """Service-account, anonymous (an emulator endpoint without a key file) or default credentials."""
        if self._credentials is None:
            _sdk("google.auth")  # google-auth comes with google-cloud-storage
            if self._secret_info:
                from google.oauth2 import service_account

                try:
                    self._credentials = service_account.Credentials.from_service_account_info(
                        self._secret_info, scopes=["https://www.googleapis.com/auth/devstorage.read_write"])
                except (ValueError, KeyError) as e:
                    raise ConfigError(f"service-account file {self.secret_data} is not usable: "
                                      f"{one_line(self.redact(str(e)), 120)}", section=self.section,
                                      key="secret_data") from None
            elif self.endpoint_url:
                from google.auth.credentials import AnonymousCredentials

                self._credentials = AnonymousCredentials()
            else:
                import google.auth

                try:
                    self._credentials, default_project = google.auth.default()
                except Exception as e:
                    raise AuthenticationError(f"no secret_data and no Application Default Credentials "
                                              f"({type(e).__name__})", provider=self.section, bucket=self.bucket) \
                        from None
                self.project = self.project or default_project
        return self._credentials

    def _auth_headers(self, refresh: bool = False) -> dict[str, str]:
        """The bearer token of the credentials (refreshed when expired or when asked), none if anonymous."""
        from google.auth.credentials import AnonymousCredentials

        creds = self.credentials
        if isinstance(creds, AnonymousCredentials):
            return {}
        with self._token_lock:
            if refresh or not creds.valid:
                from google.auth.transport.requests import Request

                try:
                    creds.refresh(Request())
                except Exception as e:
                    raise AuthenticationError(f"cannot get an access token ({self.redact(one_line(e, 200))})",
                                              provider=self.section, bucket=self.bucket) from None
            return {"authorization": f"Bearer {creds.token}"}

    @property
    def http(self) -> HttpClient:
        """Our own requests: the bearer token goes only to the configured endpoint's origin (a session URL
        the store hands back pointing anywhere else gets none: the session id in it is the authorisation)."""
        if self._http is None:
            if not self.verify_tls:
                log.warning("GCP: TLS certificate verification is OFF (verify_tls = false)")
            self._http = HttpClient(self.retry, verify_tls=self.verify_tls, auth=self._auth_headers,
                                    auth_origin=self._base_url)
        return self._http

    @property
    def _base_url(self) -> str:
        return self.endpoint_url or "https://storage.googleapis.com"

    def _sdk_retry(self):
        """The project's retry policy in google-cloud-storage's terms: its own predicate (it knows its
        transport's errors: 408, 429, 5xx, connection resets) with our delays and deadline, and at most
        ``max_retries`` retries (a fresh count for every call: build one per request)."""
        import itertools

        from google.cloud.storage.retry import DEFAULT_RETRY

        retries = itertools.count(1)
        transient = DEFAULT_RETRY._predicate
        policy = self.retry

        def predicate(exc: Exception) -> bool:
            return transient(exc) and next(retries) <= policy.max_retries

        return DEFAULT_RETRY.with_predicate(predicate) \
            .with_delay(initial=policy.initial_backoff, maximum=policy.max_backoff, multiplier=2) \
            .with_timeout(policy.total_timeout)

    def _classified(self, status: int | None, message: str, key: str, *, writing: bool = False,
                    network: bool = False, corrupt: bool = False) -> MLAnalyticsError:
        """The project's error for a GCS answer (``status``) or for no answer (``network``)."""
        kw = {"provider": self.section, "bucket": self.bucket, "key": key}
        summary = self.redact(f"{status or 'no answer'}: {one_line(message, 200)}")
        if network or status is None:
            return storage_error(NetworkError, summary, where=self._base_url, **kw)
        if corrupt or status == 400 and ("md5" in message.lower() or "crc32c" in message.lower()):
            return IntegrityError(f"checksum mismatch ({summary})", **kw)
        cls = error_class(status)
        if cls is ObjectNotFoundError and writing:
            cls = BucketNotFoundError
        return StorageError(summary, **kw) if cls is StorageError else storage_error(cls, summary, **kw)

    def map_error(self, exc: BaseException, key: str = "", writing: bool = False) -> MLAnalyticsError:
        if isinstance(exc, MLAnalyticsError):
            return exc
        if isinstance(exc, RequestFailed):
            return self._reply_error(exc.reply, exc.cause, key)
        status = getattr(exc, "code", None)
        status = status if isinstance(status, int) else None
        message = str(getattr(exc, "message", None) or exc)
        network = status is None and (isinstance(exc, (ConnectionError, TimeoutError, socket.gaierror))
                                      or "Connection" in type(exc).__name__
                                      or type(exc).__module__.startswith(("requests", "urllib3")))
        corrupt = type(exc).__name__ == "DataCorruption"
        if status is None and not network and not corrupt:
            return StorageError(self.redact(f"{type(exc).__name__}: {one_line(message, 200)}"), provider=self.section,
                                bucket=self.bucket, key=key)
        # the SDK's NotFound: listing or deleting in a bucket that is not there
        return self._classified(status, message, key, writing=True if status == 404 else writing, network=network,
                                corrupt=corrupt)

    # -- uploads: our own JSON API requests, one retry loop, checksums from the single read ----------------
    @property
    def _timeout(self) -> tuple[float, float]:
        return (self.retry.connect_timeout, self.retry.request_timeout)

    @property
    def _upload_url(self) -> str:
        return f"{self.endpoint_url or 'https://storage.googleapis.com'}/upload/storage/v1/b/{quote(self.bucket, safe='')}/o"

    def _send(self, method: str, url: str, key: str, *, once: bool = False, data=b"", headers=None,
              length: int | None = None) -> Reply:
        """One request (see :meth:`ml_analytics.httpclient.HttpClient.request`: retried under the policy when
        transient; ``once``: a single attempt). A 401 refreshes the token once. Returns the answer for any
        status < 400 or raises the mapped error (404 too)."""
        for refresh in (False, True):
            try:
                reply = self.http.request(method, url, headers=headers, body=data, length=length,
                                          attempts=1 if once else None, refresh=refresh)
            except RequestFailed as e:
                resendable = isinstance(data, (bytes, bytearray))  # a streamed body was consumed: not again
                if e.status == 401 and not refresh and resendable and self.http.auth_for(url):
                    continue
                raise self._reply_error(e.reply, e.cause, key) from None
            if reply.status == 404:
                raise self._reply_error(reply, None, key)
            return reply
        raise AssertionError("unreachable")

    def _reply_error(self, reply, cause, key: str) -> MLAnalyticsError:
        if reply is None:
            return self._classified(None, f"{type(cause).__name__}: {cause}", key, network=True)
        try:
            message = json.loads(reply.body)["error"]["message"]
        except Exception:
            message = reply.body[:200].decode("utf-8", "replace") or "no message"
        return self._classified(reply.status, message, key, writing=True)

    def put_file(self, path: str | os.PathLike, key: str) -> StoredObject:
        src = SourceFile(path)
        if src.size <= SINGLE_REQUEST_LIMIT:
            return self.put_bytes(src.read_all(), key, src.md5)
        return self._put_resumable(path, key)

    def buffer_bytes(self, size: int) -> int:
        return size if size <= SINGLE_REQUEST_LIMIT else 2 * READ_BLOCK  # the block sent and the one held back

    def put_bytes_new(self, data: bytes, key: str) -> StoredObject:
        """One request with ``ifGenerationMatch=0``: stored only if no live object is there (412)."""
        try:
            return self.put_bytes(data, key, new=True)
        except PreconditionFailedError:
            raise AlreadyExistsError(f"{self.uri(key)} exists already", provider=self.section, bucket=self.bucket,
                                     key=key) from None

    def put_bytes(self, data: bytes, key: str, md5: str | None = None, *, new: bool = False) -> StoredObject:
        """One multipart request carrying the MD5 and CRC32C in the object's metadata: GCS refuses a
        body that does not match them, so a corrupted upload never replaces the stored object."""
        import hashlib

        google_crc32c = _sdk("google_crc32c")
        md5 = md5 or hashlib.md5(data).hexdigest()
        meta = {"name": key, "contentType": "application/octet-stream", "md5Hash": _b64(bytes.fromhex(md5)),
                "crc32c": _b64(google_crc32c.value(data).to_bytes(4, "big"))}
        boundary = uuid.uuid4().hex
        body = b"".join((f"--{boundary}\r\ncontent-type: application/json; charset=UTF-8\r\n\r\n".encode(),
                         json.dumps(meta).encode(), f"\r\n--{boundary}\r\ncontent-type: "
                         f"application/octet-stream\r\n\r\n".encode(), data, f"\r\n--{boundary}--".encode()))
        headers = {"content-type": f"multipart/related; boundary={boundary}"}
        try:
            condition = "&ifGenerationMatch=0" if new else ""
            reply = self._send("POST", f"{self._upload_url}?uploadType=multipart&prettyPrint=false{condition}", key,
                               data=body, headers=headers)
        except (NetworkError, TransientError) as e:
            return self._landed_or_raise(key, len(data), md5, e)
        return self._verified(key, json.loads(reply.body), len(data), md5)

    def _put_resumable(self, path: str | os.PathLike, key: str) -> StoredObject:
        """A resumable session and streamed requests of ``RESUMABLE_CHUNK`` bytes, the file read once, its
        CRC32C computed on the way (:class:`_Body`). The last block is held back until the file was read
        to the end unchanged: a file that changed meanwhile never completes the session, it is cancelled,
        and the stored object is never touched. The CRC32C GCS reports is compared with the file's. A failed
        session is restarted (the file re-read) within the retry policy."""
        def attempt(n: int) -> StoredObject:
            if n:
                log.info("GCP: restarting the upload of %s", key)
            # CRC32C, not MD5, on the way: a tenth of the CPU; GCS computes the object's MD5 itself
            return self._resumable_once(SourceFile(path, md5=False), key)

        try:
            return self.retry.run(attempt, retryable=lambda e: isinstance(e, _Restart),
                                  what=f"GCP resumable upload of {key}")
        except _Restart as e:
            raise e.error from None

    def _resumable_once(self, src: SourceFile, key: str) -> StoredObject:
        start = self._send("POST", f"{self._upload_url}?uploadType=resumable&prettyPrint=false", key,
                           data=json.dumps({"name": key, "contentType": "application/octet-stream"}).encode(),
                           headers={"content-type": "application/json; charset=UTF-8",
                                    "x-upload-content-type": "application/octet-stream",
                                    "x-upload-content-length": str(src.size)})
        session = start.headers["location"]
        body = _Body(src)
        blocks = iter(body)
        try:
            for offset in range(0, src.size, RESUMABLE_CHUNK):
                end = min(offset + RESUMABLE_CHUNK, src.size) - 1
                last = end == src.size - 1
                reply = self._send("PUT", session, key, once=True, length=end - offset + 1,
                                   data=itertools.islice(blocks, -(-(end - offset + 1) // READ_BLOCK)),
                                   headers={"content-range": f"bytes {offset}-{end}/{src.size if last else '*'}"})
                if reply.status not in ((200, 201) if last else (308,)):  # 308: kept, send the rest
                    raise StorageError(f"resumable upload answered {reply.status} to its request for bytes "
                                       f"{offset}-{end}", provider=self.section, bucket=self.bucket, key=key)
                kept = reply.headers.get("range")
                if not last and kept is not None and kept != f"bytes=0-{end}":
                    raise TransientError(f"the store kept {kept} of the session, not all that was sent",
                                         provider=self.section, bucket=self.bucket, key=key)  # a new session
        except (NetworkError, TransientError, BucketNotFoundError) as e:
            if body.error is not None:
                self._cancel(session)
                raise body.error from None
            if body.complete:  # every byte went out: the store may have committed before the answer was lost
                try:
                    return self._landed_or_raise(key, src.size, None, e, crc32c=body.crc32c)
                except MLAnalyticsError:
                    pass
            self._cancel(session)
            raise _Restart(e) from None
        except BaseException:
            self._cancel(session)
            raise
        finally:
            blocks.close()  # the file is closed now, not when the generator is collected
        return self._verified(key, json.loads(reply.body), src.size, crc32c=body.crc32c)

    def _cancel(self, session: str) -> None:
        try:
            self.http.request("DELETE", session, attempts=1)
        except Exception:
            pass  # an abandoned session expires on its own and was never an object

    def _landed_or_raise(self, key: str, size: int, md5: str | None, error: Exception, *,
                         crc32c: str | None = None) -> StoredObject:
        """Sending failed, but the store may have acted (the answer was lost): when it holds exactly these
        bytes (same size and checksum), that is success. One attempt: the store may be down."""
        try:
            reply = self._send("GET", f"{self._api_url(key)}?fields=name,size,md5Hash,crc32c,generation"
                                      f"&prettyPrint=false", key, once=True)
            info = json.loads(reply.body)
        except MLAnalyticsError:
            raise error from None
        if int(info.get("size", -1)) == size and (_hex(info.get("md5Hash")) == md5 if md5 else
                                                  info.get("crc32c") == crc32c):
            log.info("GCP: %s was stored although its answer was lost", key)
            return StoredObject(self.section, key, self.uri(key), size, md5 or _hex(info.get("md5Hash")),
                                etag=str(info.get("generation") or "") or None)
        raise error

    def _api_url(self, key: str) -> str:
        return (f"{self.endpoint_url or 'https://storage.googleapis.com'}/storage/v1/b/{quote(self.bucket, safe='')}"
                f"/o/{quote(key, safe='')}")

    def _verified(self, key: str, info: dict, size: int, md5: str | None = None, *,
                  crc32c: str | None = None) -> StoredObject:
        """Compare what GCS reports (MD5, or CRC32C for big files) with what was read. GCS refuses a small
        upload whose declared checksums do not match before it commits; a store that checks nothing (the
        fake-gcs-server bundled for the tests) or a corrupted big upload is caught here: that generation is
        deleted, since it is not the file."""
        stored_md5 = _hex(info.get("md5Hash"))
        what, stored, ours = ("MD5", stored_md5, md5) if md5 else ("CRC32C", info.get("crc32c"), crc32c)
        if stored != ours or int(info.get("size", -1)) != size:
            generation = info.get("generation")
            try:
                self._send("DELETE", f"{self._api_url(key)}?ifGenerationMatch={generation}", key, once=True)
            except MLAnalyticsError:
                pass
            raise IntegrityError(f"stored {what} {stored} differs from the file's {ours}; not kept",
                                 provider=self.section, bucket=self.bucket, key=key)
        return StoredObject(self.section, key, self.uri(key), size, md5 or stored_md5,
                            etag=str(info.get("generation") or "") or None)

    def stat(self, key: str) -> ObjectInfo | None:
        try:
            blob = self.gcs_bucket.get_blob(key, retry=self._sdk_retry(), timeout=self._timeout)
        except Exception as e:
            raise self.map_error(e, key) from None
        return self._info(blob) if blob is not None else None

    @staticmethod
    def _info(blob) -> ObjectInfo:
        md5 = base64.b64decode(blob.md5_hash).hex() if blob.md5_hash else None
        return ObjectInfo(blob.name, blob.size or 0, etag=blob.etag, md5=md5, last_modified=blob.updated,
                          extra={"generation": blob.generation})

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        with self.translating_errors():
            for blob in self.gcs_bucket.client.list_blobs(self.gcs_bucket, prefix=self.list_prefix(prefix) or None,
                                                          retry=self._sdk_retry(), timeout=self._timeout):
                yield self._info(blob)

    def delete(self, key: str) -> None:
        from google.api_core.exceptions import NotFound

        try:
            self.gcs_bucket.blob(key).delete(retry=self._sdk_retry(), timeout=self._timeout)
        except NotFound:
            return
        except Exception as e:
            raise self.map_error(e, key) from None

    def get_bytes(self, key: str) -> bytes:
        from google.api_core.exceptions import NotFound

        try:
            return self.gcs_bucket.blob(key).download_as_bytes(retry=self._sdk_retry(), timeout=self._timeout)
        except NotFound:
            raise ObjectNotFoundError("no such object", provider=self.section, bucket=self.bucket, key=key) from None
        except Exception as e:
            raise self.map_error(e, key) from None

    def location(self) -> StoreLocation:
        return StoreLocation("gcs", self.bucket, endpoint=self.endpoint_url)

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None
        if self._bucket is not None:
            try:
                self._bucket.client.close()
            except Exception:
                pass
            self._bucket = None
