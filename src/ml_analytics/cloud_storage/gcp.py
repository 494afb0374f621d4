"""GCP: Google Cloud Storage, through google-cloud-storage (GCS's JSON API).

``secret_data`` is the path to a service-account JSON key file; it is read into this provider's
own credentials object (the original set ``GOOGLE_APPLICATION_CREDENTIALS`` for the whole
process; nothing here touches the environment). With ``endpoint_url`` and no ``secret_data``
the client is anonymous (emulators such as fake-gcs-server); with neither, Application Default
Credentials are used. Constructing the provider makes no request: the bucket is referenced,
never fetched.

Integrity: the MD5 of the content is sent with the upload and checked by the service; the
stored object's MD5 is compared again after the upload, and a mismatch deletes the object.
obstore's GCS store is not used because it writes through the XML API, which the local GCS
servers lack, so it could not be tested here.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import socket
from collections.abc import Iterator
from typing import Any

from ..errors import (AuthenticationError, BucketNotFoundError, ConfigError, IntegrityError, MLAnalyticsError,
                      NetworkError, PermissionDeniedError, ProviderNotInstalledError, StorageError, TransientError,
                      one_line)
from ..retry import RetryPolicy
from ..source import SourceFile
from .base import CloudProvider, ObjectInfo, Option, StoredObject

log = logging.getLogger(__name__)
MiB = 1024 * 1024
SINGLE_REQUEST_LIMIT = 16 * MiB
CHUNK_SIZE = 16 * MiB
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


class GCP(CloudProvider):
    section = "GCP"
    description = "Google Cloud Storage."
    extra = "gcp"
    uri_scheme = "gs"
    options = (
        Option("secret_data", "path to a service-account JSON key file", arg="secret_data", kind="path"),
        Option("bucket_name", "bucket", required=True, arg="bucketName"),
        Option("project", "project id (default: the key file's)", arg="project"),
        Option("endpoint_url", "JSON API endpoint (emulators); anonymous when no secret_data", arg="endpoint_url"),
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

    @property
    def secrets(self) -> set[str]:
        info = self._secret_info or {}
        return {v for v in (info.get("private_key"), info.get("private_key_id")) if v}

    # -- client -----------------------------------------------------------------------------------
    @property
    def gcs_bucket(self):
        if self._bucket is None:
            try:
                from google.cloud import storage
            except ImportError:
                raise ProviderNotInstalledError("[GCP] needs google-cloud-storage: "
                                                "pip install 'ml-analytics-cloud[gcp]'") from None
            if self._secret_info:
                from google.oauth2 import service_account

                try:
                    credentials = service_account.Credentials.from_service_account_info(
                        self._secret_info, scopes=["https://www.googleapis.com/auth/devstorage.read_write"])
                except (ValueError, KeyError) as e:
                    raise ConfigError(f"service-account file {self.secret_data} is not usable: "
                                      f"{one_line(self.redact(str(e)), 120)}", section=self.section,
                                      key="secret_data") from None
            elif self.endpoint_url:
                from google.auth.credentials import AnonymousCredentials

                credentials = AnonymousCredentials()
            else:
                import google.auth

                try:
                    credentials, default_project = google.auth.default()
                except Exception as e:
                    raise AuthenticationError(f"no secret_data and no Application Default Credentials "
                                              f"({type(e).__name__})", provider=self.section, bucket=self.bucket) \
                        from None
                self.project = self.project or default_project
            options = {"api_endpoint": self.endpoint_url} if self.endpoint_url else None
            client = storage.Client(project=self.project or "ml-analytics", credentials=credentials,
                                    client_options=options)
            if not self.verify_tls:
                log.warning("GCP: TLS certificate verification is OFF (verify_tls = false)")
                client._http.verify = False
            self._bucket = client.bucket(self.bucket)  # a reference: no request is made
        return self._bucket

    def _error(self, exc: BaseException, key: str = "", writing: bool = False) -> MLAnalyticsError:
        if isinstance(exc, MLAnalyticsError):
            return exc
        from google.api_core import exceptions as gexc

        status = getattr(exc, "code", None)
        summary = self.redact(f"{status or type(exc).__name__}: {one_line(getattr(exc, 'message', None) or exc, 200)}")
        kw = {"provider": self.section, "bucket": self.bucket, "key": key}
        if isinstance(exc, gexc.Unauthorized):
            return AuthenticationError(f"wrong credentials ({summary})", **kw)
        if isinstance(exc, gexc.Forbidden):
            return PermissionDeniedError(f"permission denied ({summary})", **kw)
        if isinstance(exc, gexc.NotFound):
            return BucketNotFoundError(f"bucket does not exist ({summary})", **kw)
        if type(exc).__name__ == "DataCorruption" or isinstance(exc, gexc.BadRequest) and "md5" in str(exc).lower():
            return IntegrityError(f"checksum mismatch ({summary})", **kw)
        if isinstance(exc, (gexc.ServerError, gexc.TooManyRequests)):
            return TransientError(f"store kept failing after retries ({summary})", **kw)
        if isinstance(exc, (ConnectionError, TimeoutError, socket.gaierror)) or "Connection" in type(exc).__name__ \
                or type(exc).__module__.startswith(("requests", "urllib3")):
            return NetworkError(f"cannot reach {self.endpoint_url or 'storage.googleapis.com'} ({summary})", **kw)
        return StorageError(summary, **kw)

    # -- contract -------------------------------------------------------------------------------------
    def put_file(self, path: str | os.PathLike, key: str) -> StoredObject:
        src = SourceFile(path)
        if src.size <= SINGLE_REQUEST_LIMIT:
            return self.put_bytes(src.read_all(), key, src.md5)
        # Resumable upload: the SDK needs a seekable file to rewind on retries, so hash first and
        # compare the stored MD5 with that hash afterwards (a file changed meanwhile fails).
        for _ in src.chunks():
            pass
        blob = self.gcs_bucket.blob(key, chunk_size=CHUNK_SIZE)
        with open(path, "rb") as fh:
            landed = self._upload(key, blob, lambda **kw: blob.upload_from_file(fh, size=src.size, **kw),
                                  size=src.size, md5=src.md5)
        return landed or self._verified(key, blob, src.bytes_read, src.md5)

    def put_bytes(self, data: bytes, key: str, md5: str | None = None) -> StoredObject:
        import hashlib

        md5 = md5 or hashlib.md5(data).hexdigest()
        blob = self.gcs_bucket.blob(key)
        blob.md5_hash = base64.b64encode(bytes.fromhex(md5)).decode()  # sent in the metadata, checked
        landed = self._upload(key, blob, lambda **kw: blob.upload_from_string(data, **kw), size=len(data), md5=md5)
        return landed or self._verified(key, blob, len(data), md5)

    def _upload(self, key: str, blob, send, *, size: int, md5: str) -> StoredObject | None:
        """Send; if sending failed, the store may still have acted (the answer was lost): when it
        holds exactly these bytes (same size and MD5), that is success, returned here."""
        try:
            send(content_type="application/octet-stream", checksum="md5", retry=self.retry.google_retry(),
                 timeout=self.retry.request_timeout)
            return None
        except MLAnalyticsError:
            raise
        except Exception as e:
            cause = e.__context__ if isinstance(e.__context__, MLAnalyticsError) else e
            error = self._error(cause, key, writing=True)
        try:
            info = self.stat(key)
        except MLAnalyticsError:
            info = None
        if info is not None and info.size == size and info.md5 == md5:
            log.info("GCP: %s was stored although its answer was lost", key)
            return StoredObject(self.section, key, self.uri(key), size, md5,
                                etag=str(info.extra.get("generation") or "") or None)
        raise error

    def _verified(self, key: str, blob, size: int, md5: str) -> StoredObject:
        stored_md5 = base64.b64decode(blob.md5_hash).hex() if blob.md5_hash else None
        if stored_md5 and stored_md5 != md5:
            self.delete(key)
            raise IntegrityError(f"stored MD5 {stored_md5} differs from the file's {md5}; object deleted",
                                 provider=self.section, bucket=self.bucket, key=key)
        return StoredObject(self.section, key, self.uri(key), size, md5,
                            etag=str(blob.generation) if blob.generation else None)

    def stat(self, key: str) -> ObjectInfo | None:
        try:
            blob = self.gcs_bucket.get_blob(key, retry=self.retry.google_retry())
        except Exception as e:
            raise self._error(e, key) from None
        return self._info(blob) if blob is not None else None

    @staticmethod
    def _info(blob) -> ObjectInfo:
        md5 = base64.b64decode(blob.md5_hash).hex() if blob.md5_hash else None
        return ObjectInfo(blob.name, blob.size or 0, etag=blob.etag, md5=md5, last_modified=blob.updated,
                          extra={"generation": blob.generation})

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        with self.translating_errors():
            for blob in self.gcs_bucket.client.list_blobs(self.gcs_bucket, prefix=self.list_prefix(prefix) or None,
                                                          retry=self.retry.google_retry()):
                yield self._info(blob)

    def delete(self, key: str) -> None:
        from google.api_core.exceptions import NotFound

        try:
            self.gcs_bucket.blob(key).delete(retry=self.retry.google_retry())
        except NotFound:
            return
        except Exception as e:
            raise self._error(e, key) from None

    def druid_input_source(self, keys, **options: Any) -> dict:
        return {"type": "google", "uris": [self.uri(k) for k in keys]}

    def close(self) -> None:
        if self._bucket is not None:
            try:
                self._bucket.client.close()
            except Exception:
                pass
            self._bucket = None
