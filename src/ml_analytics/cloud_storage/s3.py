"""S3 and S3-compatible stores: one implementation, a table of quirks per flavour.

``[S3]`` (this module) is any S3-compatible store (MinIO, Ceph, SeaweedFS, ...); ``[AWS]``
(``aws.py``) and ``[ORACLE]`` (``oracle.py``) are the same class with other quirks, the way
rclone describes S3 look-alikes by a table rather than by copied code.

The engine is obstore (Rust ``object_store``): one client per provider, multipart uploads with
parts sent concurrently and a bounded number of part buffers, and multipart uploads aborted on
failure. Every PUT and every part carries a checksum the server checks (``x-amz-checksum-sha256``
or ``-crc64nvme``), so a body corrupted in transit is rejected instead of stored. Bodies are never
sent with ``aws-chunked`` encoding (OCI refuses it) and CRC32 checksums are never sent (OCI refuses
them). Open multipart uploads nobody will finish are swept by :mod:`.s3_sweep`.

Errors: obstore's typed exceptions give the status (401, 403, 404, 412, ...), which
:data:`ml_analytics.errors.STATUS_ERRORS` turns into the project's error; the S3 ``<Code>`` in the
message refines it (``NoSuchBucket``, ``SignatureDoesNotMatch``, ``BadDigest``) and is the fallback
when obstore only says "generic".
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..errors import (AlreadyExistsError, AuthenticationError, BucketNotFoundError, ConfigError, ConflictError,
                      IntegrityError,
                      MLAnalyticsError, NetworkError, ObjectNotFoundError, PermissionDeniedError,
                      ProviderNotInstalledError, StorageError, TransientError, error_class, one_line, storage_error)
from ..config import url_problem
from ..retry import RetryPolicy
from ..source import SourceFile
from .base import CloudProvider, ObjectInfo, Option, StoredObject
from .capabilities import (BatchCleanup, CreateOnly, Locatable, Multipart, PrefixCleanup, ReadBack, SignedUrls,
                           StoreLocation, StreamUpload)
from .s3_sweep import OrphanSweeper, boto3_client

log = logging.getLogger(__name__)

MiB = 1024 * 1024
DEFAULT_PART_SIZE = 8 * MiB
MAX_PARTS = 10_000  # S3's limit; the part size grows for files that would need more
DEFAULT_PART_CONCURRENCY = 8


@dataclass(frozen=True)
class S3Quirks:
    """How one S3 flavour differs from plain S3."""

    virtual_hosted_style: bool = False  # default addressing (a config key may override when allowed)
    addressing_configurable: bool = True
    credential_chain: bool = False  # may run without keys (env, profile, instance role)
    endpoint_required: bool = True
    well_known_endpoint: bool = False  # every S3 client knows the endpoint (AWS): readers need not be told
    checksum_algorithm: str = "sha256"  # sent on every PUT and part, checked by the store; never CRC32
    checksum_configurable: bool = True
    # With a signed checksum header the store verifies the body, so hashing the payload again for the
    # signature (x-amz-content-sha256) is pure cost. Stores that insist on signed payloads say False.
    unsigned_payload: bool = True
    chunked_encoding: bool = False  # the store takes aws-chunked bodies (OCI does not; never sent here)


QUIRKS: dict[str, S3Quirks] = {
    # AWS: virtual-hosted addressing, the standard credential chain, an endpoint every client knows.
    # CRC64NVME: AWS's own default, the cheapest checksum to compute and verify.
    "AWS": S3Quirks(virtual_hosted_style=True, credential_chain=True, endpoint_required=False,
                    well_known_endpoint=True, checksum_algorithm="crc64nvme", chunked_encoding=True),
    # OCI: path-style only, explicit keys, explicit endpoint (NAMESPACE.compat.objectstorage.REGION...),
    # accepts only MD5 / SHA256 / CRC32C checksums, signed payloads.
    "ORACLE": S3Quirks(virtual_hosted_style=False, addressing_configurable=False, checksum_configurable=False,
                       unsigned_payload=False),
    # Anything else S3-compatible: path-style by default, configurable.
    "S3": S3Quirks(),
}


def s3_options(*, endpoint_required: bool, keys_required: bool, addressing: bool, extra=()) -> tuple[Option, ...]:
    opts = [
        Option("endpoint_url", "S3 API endpoint URL", required=endpoint_required, arg="endpoint_url", kind="url"),
        Option("access_key", "access key id", required=keys_required, secret=True, arg="accessKey"),
        Option("secret_access_key", "secret access key", required=keys_required, secret=True,
               arg="secretAccessKey"),
        Option("region_name", "region (signing region)", arg="regionName"),
        Option("bucket_name", "bucket", required=True, arg="bucketName"),
    ]
    if addressing:
        opts.append(Option("virtual_hosted_style", "true: bucket.host/key; false: host/bucket/key", kind="bool",
                           arg="virtualHostedStyle"))
    opts += [
        Option("checksum_algorithm", "checksum the store verifies on every PUT and part: sha256 or crc64nvme",
               arg="checksumAlgorithm"),
        Option("md5_multipart", "also compute a whole-file MD5 for multipart uploads (costs CPU)", default="false",
               kind="bool", arg="md5Multipart"),
        Option("part_size_mib", "multipart part size in MiB", default=str(DEFAULT_PART_SIZE // MiB), kind="int",
               arg="partSizeMiB"),
        Option("part_concurrency", "parts of one file in flight", default=str(DEFAULT_PART_CONCURRENCY),
               kind="int", arg="partConcurrency"),
        Option("verify_tls", "verify TLS certificates (turning off logs a warning)", default="true", kind="bool",
               arg="verifyTls"),
        *extra,
    ]
    return tuple(opts)


# -- errors ---------------------------------------------------------------------------------------------
_S3_CODE = re.compile(r"<Code>([^<]+)</Code>")
_S3_MESSAGE = re.compile(r"<Message>([^<]+)</Message>")
_STATUS = re.compile(r"status(?: code)?:? (\d{3})")
# S3 error codes that say more than their status does.
CODE_ERRORS: dict[str, type[StorageError]] = {
    **dict.fromkeys(("SignatureDoesNotMatch", "InvalidAccessKeyId", "InvalidToken", "ExpiredToken",
                     "AuthorizationHeaderMalformed", "InvalidSecurity", "InvalidClientTokenId"), AuthenticationError),
    "NoSuchBucket": BucketNotFoundError,
    "AccessDenied": PermissionDeniedError, "AllAccessDisabled": PermissionDeniedError,
    **dict.fromkeys(("BadDigest", "XAmzContentChecksumMismatch", "InvalidDigest", "XAmzContentSHA256Mismatch"),
                    IntegrityError),
    **dict.fromkeys(("SlowDown", "InternalError", "ServiceUnavailable", "RequestTimeout"), TransientError),
    "NoSuchUpload": ConflictError,
}
_NETWORK_HINTS = ("error sending request", "connection refused", "dns error", "failed to lookup",
                  "tcp connect error", "connection reset", "timed out", "operation timed out", "client error (connect)",
                  "connection closed", "incomplete message", "broken pipe", "unexpected eof", "error reading a body",
                  "channel closed")


def _typed_status(exc: BaseException) -> int | None:
    """The HTTP status obstore's exception class stands for, if it is one of its typed ones."""
    try:
        from obstore import exceptions as oe
    except ImportError:
        return None
    for cls, status in ((oe.UnauthenticatedError, 401), (oe.PermissionDeniedError, 403), (oe.NotFoundError, 404),
                        (oe.AlreadyExistsError, 409), (oe.PreconditionError, 412)):
        if isinstance(exc, cls):
            return status
    return None


def _root(exc: BaseException) -> BaseException:
    """The error our own stream raised inside obstore (file changed, unreadable), if that is the cause."""
    seen = exc
    while seen is not None:
        if isinstance(seen, MLAnalyticsError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return exc


class S3(CloudProvider):
    section = "S3"
    description = "Any S3-compatible store (MinIO, Ceph, SeaweedFS, ...)."
    extra = "s3"
    uri_scheme = "s3"
    quirks = QUIRKS["S3"]
    options = s3_options(endpoint_required=True, keys_required=True, addressing=True)
    capabilities = frozenset({ReadBack, StreamUpload, SignedUrls, Locatable, Multipart, BatchCleanup, CreateOnly,
                              PrefixCleanup})
    default_concurrency = 64  # uploads in flight: obstore's client is cheap per request; 64 beat 16 and 256

    def __init__(self, accessKey: str | None = None, secretAccessKey: str | None = None,  # noqa: N803 (seed names)
                 regionName: str | None = None, bucketName: str | None = None, endpoint_url: str | None = None,
                 virtualHostedStyle: bool | None = None, partSizeMiB: int = DEFAULT_PART_SIZE // MiB,
                 partConcurrency: int = DEFAULT_PART_CONCURRENCY, verifyTls: bool = True,
                 checksumAlgorithm: str | None = None, md5Multipart: bool = False,
                 retry: RetryPolicy | None = None, **legacy: Any):
        legacy.pop("service_name", None)  # the seed's [AWS] service_name: accepted and ignored
        if legacy:
            raise TypeError(f"{type(self).__name__}() got unexpected arguments: {', '.join(sorted(legacy))}")
        if not bucketName:
            raise ConfigError("bucket_name is required", section=self.section, key="bucket_name")
        if bool(accessKey) != bool(secretAccessKey):
            raise ConfigError("set both access_key and secret_access_key, or neither", section=self.section,
                              key="access_key" if not accessKey else "secret_access_key")
        if not accessKey and not self.quirks.credential_chain:
            raise ConfigError("access_key and secret_access_key are required", section=self.section, key="access_key")
        if not endpoint_url and self.quirks.endpoint_required:
            raise ConfigError("endpoint_url is required", section=self.section, key="endpoint_url")
        if partSizeMiB < 5 or partSizeMiB > 5 * 1024:
            raise ConfigError("must be between 5 and 5120 (S3's part size limits)", section=self.section,
                              key="part_size_mib")
        self.bucket = bucketName
        self.region = regionName or "us-east-1"
        self.endpoint_url = endpoint_url.rstrip("/") if endpoint_url else None
        if self.endpoint_url and url_problem(self.endpoint_url):  # e.g. built from an OCI namespace
            raise ConfigError(f"{url_problem(self.endpoint_url)}; not used", section=self.section, key="endpoint_url")
        if virtualHostedStyle is not None and self.quirks.addressing_configurable:
            self.virtual_hosted_style = virtualHostedStyle
        else:  # AWS's virtual-hosted default applies to AWS's own endpoints, not to a custom endpoint_url
            self.virtual_hosted_style = self.quirks.virtual_hosted_style and not (
                endpoint_url and not self.quirks.endpoint_required and self.quirks.addressing_configurable)
        algorithm = (checksumAlgorithm or self.quirks.checksum_algorithm).lower()
        if algorithm not in ("sha256", "crc64nvme") or (checksumAlgorithm and not self.quirks.checksum_configurable
                                                         and algorithm != self.quirks.checksum_algorithm):
            allowed = "sha256 or crc64nvme" if self.quirks.checksum_configurable else self.quirks.checksum_algorithm
            raise ConfigError(f"must be {allowed}, got {checksumAlgorithm!r}", section=self.section,
                              key="checksum_algorithm")
        self.checksum_algorithm = algorithm
        self.md5_multipart = md5Multipart
        self.part_size = partSizeMiB * MiB
        self.default_part_concurrency = max(1, partConcurrency)
        self.verify_tls = verifyTls
        self.retry = retry or RetryPolicy()
        self._access_key = accessKey
        self._secret_key = secretAccessKey
        self._store = None
        self.sweeper = OrphanSweeper(self.section, self.bucket, self._sweep_client, self.redact, self.retry)

    # -- client -----------------------------------------------------------------------------------
    def _effective_endpoint(self) -> str | None:
        """The endpoint obstore talks to: never with a ``user:password@`` (S3 signs with its keys; a
        password in the URL would only end up in pre-signed URLs and messages)."""
        if not self.endpoint_url:
            return None
        parts = urlsplit(self.endpoint_url)
        parts = parts._replace(netloc=parts.netloc.rpartition("@")[2])
        if not self.virtual_hosted_style or (parts.hostname and parts.hostname.startswith(self.bucket + ".")):
            return urlunsplit(parts)
        return urlunsplit(parts._replace(netloc=f"{self.bucket}.{parts.netloc}"))

    def _obstore_retry(self) -> dict:
        """The project's retry policy in obstore's terms."""
        r = self.retry
        return {"max_retries": r.max_retries, "retry_timeout": timedelta(seconds=r.total_timeout),
                "backoff": {"init_backoff": timedelta(seconds=r.initial_backoff),
                            "max_backoff": timedelta(seconds=r.max_backoff), "base": 2}}

    @property
    def store(self):
        if self._store is None:
            try:
                from obstore.store import S3Store
            except ImportError:
                raise ProviderNotInstalledError(
                    f"[{self.section}] needs obstore: pip install 'ml-analytics-cloud[{self.extra}]'") from None
            config: dict[str, Any] = {"region": self.region, "checksum_algorithm": self.checksum_algorithm,
                                      "virtual_hosted_style_request": self.virtual_hosted_style,
                                      "unsigned_payload": self.quirks.unsigned_payload}
            client_options: dict[str, Any] = {"connect_timeout": timedelta(seconds=self.retry.connect_timeout),
                                              "timeout": timedelta(seconds=self.retry.request_timeout)}
            endpoint = self._effective_endpoint()
            if endpoint:
                config["endpoint"] = endpoint
                if endpoint.startswith("http://"):
                    client_options["allow_http"] = True
            if not self.verify_tls:
                log.warning("%s: TLS certificate verification is OFF (verify_tls = false)", self.section)
                client_options["allow_invalid_certificates"] = True
            kwargs: dict[str, Any] = {}
            if self._access_key:
                config["access_key_id"] = self._access_key
                config["secret_access_key"] = self._secret_key
            else:
                kwargs["credential_provider"] = self._credential_chain()
            self._store = S3Store(self.bucket, config=config, client_options=client_options,
                                  retry_config=self._obstore_retry(), **kwargs)
        return self._store

    def _credential_chain(self):
        try:
            from obstore.auth.boto3 import Boto3CredentialProvider
        except ImportError:
            raise ProviderNotInstalledError(f"[{self.section}] without keys uses the AWS credential chain, "
                                            f"which needs boto3: pip install 'ml-analytics-cloud[aws]'") from None
        return Boto3CredentialProvider()

    def _sweep_client(self):
        return boto3_client(endpoint_url=self.endpoint_url, region=self.region,
                            virtual_hosted_style=self.virtual_hosted_style, verify_tls=self.verify_tls,
                            retry=self.retry, access_key=self._access_key, secret_key=self._secret_key)

    # -- errors -------------------------------------------------------------------------------------
    def map_error(self, exc: BaseException, key: str = "", writing: bool = False) -> MLAnalyticsError:
        if isinstance(exc, MLAnalyticsError):
            return exc
        text = str(exc)
        code = _S3_CODE.search(text)
        message = _S3_MESSAGE.search(text)
        code_s = code.group(1) if code else ""
        status = _typed_status(exc)
        if status is None:
            found = _STATUS.search(text)
            status = int(found.group(1)) if found else None
        parts = [f"HTTP {status}" if status else "", code_s]
        summary = " ".join(p for p in parts if p) + (f": {message.group(1)}" if message else "")
        if not code_s:
            summary = one_line(text.split("\n")[0], 300)
        summary = self.redact(summary)
        kw = {"provider": self.section, "bucket": self.bucket, "key": key}
        cls = CODE_ERRORS.get(code_s)
        if cls is None and status is not None:
            cls = error_class(status)
            if cls is ObjectNotFoundError and writing:  # a write cannot miss its object: the bucket is missing
                cls = BucketNotFoundError
        if cls is None and any(h in text.lower() for h in _NETWORK_HINTS):
            cls = NetworkError
        if cls is ConflictError and code_s == "NoSuchUpload":
            return ConflictError(f"the multipart upload was aborted by someone else while it ran (another run's "
                                 f"clean-up?), nothing stored ({summary})", **kw)
        if cls is None or cls is StorageError:
            return StorageError(summary, **kw)
        return storage_error(cls, summary, where=self.endpoint_url or "the AWS endpoint", **kw)

    # -- contract -------------------------------------------------------------------------------------
    def part_size_for(self, size: int) -> int:
        """The part size used for a file of ``size`` bytes: the configured one, grown in whole MiB
        so that no upload needs more than S3's 10,000 parts."""
        needed = -(-size // (MAX_PARTS - 1))
        return max(self.part_size, -(-needed // MiB) * MiB)

    def buffer_bytes(self, size: int, parts_in_flight: int | None = None) -> int:
        part = self.part_size_for(size)
        parts = parts_in_flight or self.default_part_concurrency
        return size if size <= part else part * (parts + 1)

    def _stored(self, key: str, size: int, md5: str | None, result: dict) -> StoredObject:
        return StoredObject(self.section, key, self.uri(key), size, md5,
                            etag=(result.get("e_tag") or "").strip('"') or None)

    def put_file(self, path: str | os.PathLike, key: str, *, parts_in_flight: int | None = None) -> StoredObject:
        """Small files in one PUT (with their MD5); big files as a multipart upload streamed from disk.

        The stream re-checks the file at its end: if it changed, the iterator raises, obstore aborts
        the multipart upload and whatever the key held before stays as it was.
        """
        src = SourceFile(path, md5=self.md5_multipart)
        if src.size <= self.part_size:
            return self.put_bytes(src.read_all(), key)  # hashes the bytes it sends
        stored = self._put_parts(src.chunks(self.part_size_for(src.size)), key, self.part_size_for(src.size),
                                 parts_in_flight)
        return StoredObject(self.section, key, stored.uri, src.bytes_read, src.md5, etag=stored.etag)

    def put_stream(self, chunks: Iterable[bytes], key: str) -> StoredObject:
        """A multipart upload fed while ``chunks`` are produced (Spark partitions); aborted if they raise.
        No per-upload sweep: the caller owns the prefix and drops every open upload under it at the end
        (a Spark run's commit), which also catches a lost CreateMultipartUpload answer's orphan."""
        counted = _Counted(chunks)
        stored = self._put_parts(iter(counted), key, self.part_size, None, sweep=False)
        return StoredObject(self.section, key, stored.uri, counted.size, None, etag=stored.etag)

    def _put_parts(self, chunks: Iterator[bytes], key: str, part: int, parts_in_flight: int | None, *,
                   sweep: bool = True) -> StoredObject:
        import obstore as obs

        started = time.time()
        if sweep:
            self.sweeper.warm_up()  # build the sweep's client while the parts go up, not after
        try:
            result = obs.put(self.store, key, chunks, chunk_size=part,
                             max_concurrency=parts_in_flight or self.default_part_concurrency)
        except Exception as e:
            error = self.map_error(_root(e), key, writing=True)
            if sweep and not error.retryable:  # the store answers: clean up now (unreachable: at the batch's end)
                self.sweeper.sweep_key(key, started)
            raise error from None
        if sweep:
            self.sweeper.sweep_key(key, started)
        return self._stored(key, 0, None, result)

    def finish_batch(self, big_items, since: float, failed_keys=frozenset()) -> int:
        """After a batch: abort multipart uploads still open for its keys sent in parts (see :mod:`.s3_sweep`)."""
        keys = {i.key for i in big_items if i.size > self.part_size_for(i.size)}
        return self.sweeper.finish_batch(keys, since, failed_keys)

    def put_bytes(self, data: bytes, key: str, md5: str | None = None) -> StoredObject:
        import hashlib

        import obstore as obs

        try:
            result = obs.put(self.store, key, data, use_multipart=False)
        except Exception as e:
            raise self.map_error(e, key, writing=True) from None
        return self._stored(key, len(data), md5 or hashlib.md5(data).hexdigest(), result)

    def put_bytes_new(self, data: bytes, key: str) -> StoredObject:
        """One PUT with ``If-None-Match: *``: stored only if the key is free (412: AlreadyExistsError)."""
        import hashlib

        import obstore as obs
        from obstore.exceptions import AlreadyExistsError as Taken, PreconditionError

        try:
            result = obs.put(self.store, key, data, mode="create", use_multipart=False)
        except (Taken, PreconditionError):
            raise AlreadyExistsError(f"{self.uri(key)} exists already", provider=self.section, bucket=self.bucket,
                                     key=key) from None
        except Exception as e:
            raise self.map_error(e, key, writing=True) from None
        return self._stored(key, len(data), hashlib.md5(data).hexdigest(), result)

    def abort_uploads_under(self, prefix: str) -> int:
        """Abort every open multipart upload under ``prefix`` (its owner says so), whatever its age."""
        with self.translating_errors(prefix):
            return self.sweeper.abort_under(self.list_prefix(prefix))

    def get_bytes(self, key: str) -> bytes:
        import obstore as obs

        try:
            return bytes(obs.get(self.store, key).bytes())
        except FileNotFoundError:
            raise ObjectNotFoundError("no such object", provider=self.section, bucket=self.bucket, key=key) from None
        except Exception as e:
            raise self.map_error(e, key) from None

    def stat(self, key: str) -> ObjectInfo | None:
        import obstore as obs

        try:
            meta = obs.head(self.store, key)
        except FileNotFoundError:
            return None
        except Exception as e:
            raise self.map_error(e, key) from None
        return ObjectInfo(meta["path"], meta["size"], etag=(meta.get("e_tag") or "").strip('"') or None,
                          last_modified=meta.get("last_modified"))

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        import obstore as obs

        start = self.list_prefix(prefix).rstrip("/") or None
        with self.translating_errors():
            for batch in obs.list(self.store, prefix=start):
                for meta in batch:
                    yield ObjectInfo(meta["path"], meta["size"], etag=(meta.get("e_tag") or "").strip('"') or None,
                                     last_modified=meta.get("last_modified"))

    def delete(self, key: str) -> None:
        import obstore as obs

        try:
            obs.delete(self.store, key)
        except FileNotFoundError:
            return
        except Exception as e:
            raise self.map_error(e, key) from None

    def sign_url(self, key: str, expires_seconds: int = 6 * 3600) -> str:
        """A pre-signed GET URL (for Druid's ``http`` input source); valid ``expires_seconds``."""
        import obstore as obs

        with self.translating_errors(key):
            return obs.sign(self.store, "GET", key, timedelta(seconds=expires_seconds))

    def location(self) -> StoreLocation:
        endpoint = None
        if self.endpoint_url and not self.quirks.well_known_endpoint:
            url = urlsplit(self.endpoint_url)
            endpoint = urlunsplit(url._replace(netloc=url.netloc.rsplit("@", 1)[-1]))  # never a URL's password
        return StoreLocation("s3", self.bucket, endpoint=endpoint, region=self.region,
                             path_style=not self.virtual_hosted_style, chunked_encoding=self.quirks.chunked_encoding)

    def close(self) -> None:
        self._store = None
        self.sweeper.close()

    @property
    def secrets(self) -> set[str]:
        return {s for s in (self._secret_key,) if s}


class _Counted:
    """Chunks passed through, counting their bytes."""

    def __init__(self, chunks: Iterable[bytes]):
        self.chunks = chunks
        self.size = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.chunks:
            self.size += len(chunk)
            yield chunk
