"""S3 and S3-compatible stores: one implementation, a table of quirks per flavour.

``[S3]`` (this module) is any S3-compatible store (MinIO, Ceph, SeaweedFS, ...); ``[AWS]``
(``aws.py``) and ``[ORACLE]`` (``oracle.py``) are the same class with other quirks, the way
rclone describes S3 look-alikes by a table rather than by copied code.

The engine is obstore (Rust ``object_store``): one client per provider, multipart uploads with
parts sent concurrently and a bounded number of part buffers, and multipart uploads aborted on
failure. Every PUT and every part carries ``x-amz-checksum-sha256``, which the server checks,
so a body corrupted in transit is rejected instead of stored. Bodies are never sent with
``aws-chunked`` encoding (OCI refuses it) and CRC32 checksums are never sent (OCI refuses them).
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from ..errors import (AuthenticationError, BucketNotFoundError, ConfigError, IntegrityError, MLAnalyticsError,
                      NetworkError, PermissionDeniedError, ProviderNotInstalledError, StorageError, TransientError,
                      one_line)
from ..retry import RetryPolicy
from ..source import SourceFile
from .base import CloudProvider, ObjectInfo, Option, StoredObject

if TYPE_CHECKING:
    from concurrent.futures import Future

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
    druid_endpoint_config: bool = True  # Druid needs endpointConfig / clientConfig to reach it
    checksum_algorithm: str = "sha256"  # sent on every PUT and part, checked by the store; never CRC32
    checksum_configurable: bool = True
    # With a signed checksum header the store verifies the body, so hashing the payload again for the
    # signature (x-amz-content-sha256) is pure cost. Stores that insist on signed payloads say False.
    unsigned_payload: bool = True


QUIRKS: dict[str, S3Quirks] = {
    # AWS: virtual-hosted addressing, the standard credential chain, Druid knows the endpoint.
    # CRC64NVME: AWS's own default, the cheapest checksum to compute and verify.
    "AWS": S3Quirks(virtual_hosted_style=True, credential_chain=True, endpoint_required=False,
                    druid_endpoint_config=False, checksum_algorithm="crc64nvme"),
    # OCI: path-style only, explicit keys, explicit endpoint (NAMESPACE.compat.objectstorage.REGION...),
    # accepts only MD5 / SHA256 / CRC32C checksums, signed payloads.
    "ORACLE": S3Quirks(virtual_hosted_style=False, addressing_configurable=False, checksum_configurable=False,
                       unsigned_payload=False),
    # Anything else S3-compatible: path-style by default, configurable.
    "S3": S3Quirks(),
}


def s3_options(*, endpoint_required: bool, keys_required: bool, addressing: bool, extra=()) -> tuple[Option, ...]:
    opts = [
        Option("endpoint_url", "S3 API endpoint URL", required=endpoint_required, arg="endpoint_url"),
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


def _root(exc: BaseException) -> BaseException:
    """The error our own stream raised inside obstore (file changed, unreadable), if that is the cause."""
    seen = exc
    while seen is not None:
        if isinstance(seen, MLAnalyticsError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return exc


_S3_CODE = re.compile(r"<Code>([^<]+)</Code>")
_S3_MESSAGE = re.compile(r"<Message>([^<]+)</Message>")
_AUTH_CODES = {"SignatureDoesNotMatch", "InvalidAccessKeyId", "InvalidToken", "ExpiredToken",
               "AuthorizationHeaderMalformed", "InvalidSecurity", "InvalidClientTokenId"}
_NETWORK_HINTS = ("error sending request", "connection refused", "dns error", "failed to lookup",
                  "tcp connect error", "connection reset", "timed out", "operation timed out", "client error (connect)",
                  "connection closed", "incomplete message", "broken pipe", "unexpected eof", "error reading a body",
                  "channel closed")


class S3(CloudProvider):
    section = "S3"
    description = "Any S3-compatible store (MinIO, Ceph, SeaweedFS, ...)."
    extra = "s3"
    uri_scheme = "s3"
    quirks = QUIRKS["S3"]
    options = s3_options(endpoint_required=True, keys_required=True, addressing=True)
    orphan_idle_seconds = 10  # an open multipart upload this long without a part is nobody's any more
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
        self.part_concurrency = max(1, partConcurrency)
        self.verify_tls = verifyTls
        self.retry = retry or RetryPolicy()
        self._access_key = accessKey
        self._secret_key = secretAccessKey
        self._store = None
        self._sweeper: Future | None = None
        self._sweeper_lock = threading.Lock()

    # -- client -----------------------------------------------------------------------------------
    def _effective_endpoint(self) -> str | None:
        if not self.endpoint_url:
            return None
        if not self.virtual_hosted_style:
            return self.endpoint_url
        parts = urlsplit(self.endpoint_url)
        if parts.hostname and parts.hostname.startswith(self.bucket + "."):
            return self.endpoint_url
        return urlunsplit(parts._replace(netloc=f"{self.bucket}.{parts.netloc}"))

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
                                      "unsigned_payload": self.quirks.unsigned_payload, "conditional_put": "etag"}
            client_options: dict[str, Any] = self.retry.obstore_client_options()
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
                                  retry_config=self.retry.obstore_retry_config(), **kwargs)
        return self._store

    def _credential_chain(self):
        try:
            from obstore.auth.boto3 import Boto3CredentialProvider
        except ImportError:
            raise ProviderNotInstalledError(f"[{self.section}] without keys uses the AWS credential chain, "
                                            f"which needs boto3: pip install 'ml-analytics-cloud[aws]'") from None
        return Boto3CredentialProvider()

    # -- errors -------------------------------------------------------------------------------------
    def _error(self, exc: BaseException, key: str = "", writing: bool = False) -> MLAnalyticsError:
        if isinstance(exc, MLAnalyticsError):
            return exc
        text = str(exc)
        code = _S3_CODE.search(text)
        message = _S3_MESSAGE.search(text)
        code_s = code.group(1) if code else ""
        status = re.search(r"status code: (\d{3})", text)
        status_s = status.group(1) if status else ""
        parts = [f"HTTP {status_s}" if status_s else "", code_s, message.group(1) if message else ""]
        summary = " ".join(p for p in parts[:2] if p) + (f": {parts[2]}" if parts[2] else "")
        if not code_s:
            summary = one_line(text.split("\n")[0], 300)
        summary = self.redact(summary)
        kw = {"provider": self.section, "bucket": self.bucket, "key": key}
        name = type(exc).__name__
        low = text.lower()
        if code_s in _AUTH_CODES or name == "UnauthenticatedError":
            return AuthenticationError(f"wrong credentials ({summary})", **kw)
        if code_s == "NoSuchBucket" or (writing and isinstance(exc, FileNotFoundError)):
            return BucketNotFoundError(f"bucket does not exist ({summary})", **kw)
        if code_s in ("AccessDenied", "AllAccessDisabled") or name == "PermissionDeniedError":
            return PermissionDeniedError(f"permission denied ({summary})", **kw)
        if code_s in ("BadDigest", "XAmzContentChecksumMismatch", "InvalidDigest", "XAmzContentSHA256Mismatch"):
            return IntegrityError(f"the store rejected the body as corrupted ({summary})", **kw)
        if status_s.startswith("5") or code_s in ("SlowDown", "InternalError", "ServiceUnavailable", "RequestTimeout"):
            return TransientError(f"store kept failing after retries ({summary})", **kw)
        if any(h in low for h in _NETWORK_HINTS):
            where = self.endpoint_url or "the AWS endpoint"
            return NetworkError(f"cannot reach {where} ({summary})", **kw)
        return StorageError(summary, **kw)

    # -- contract -------------------------------------------------------------------------------------
    def part_size_for(self, size: int) -> int:
        """The part size used for a file of ``size`` bytes: the configured one, grown in whole MiB
        so that no upload needs more than S3's 10,000 parts."""
        needed = -(-size // (MAX_PARTS - 1))
        return max(self.part_size, -(-needed // MiB) * MiB)

    def buffer_bytes(self, size: int) -> int:
        part = self.part_size_for(size)
        return size if size <= part else part * (self.part_concurrency + 1)

    def _stored(self, key: str, size: int, md5: str | None, result: dict) -> StoredObject:
        return StoredObject(self.section, key, self.uri(key), size, md5,
                            etag=(result.get("e_tag") or "").strip('"') or None)

    def put_file(self, path: str | os.PathLike, key: str) -> StoredObject:
        """Small files in one PUT (with their MD5); big files as a multipart upload streamed from disk.

        The stream re-checks the file at its end: if it changed, the iterator raises, obstore aborts
        the multipart upload and whatever the key held before stays as it was.
        """
        import obstore as obs

        src = SourceFile(path, md5=self.md5_multipart)
        if src.size <= self.part_size:
            return self.put_bytes(src.read_all(), key)  # hashes the bytes it sends
        part = self.part_size_for(src.size)
        started = time.time()
        self._sweeper_job()  # build the sweep's client while the parts go up, not after
        try:
            result = obs.put(self.store, key, src.chunks(part), chunk_size=part, max_concurrency=self.part_concurrency)
        except Exception as e:
            error = self._error(_root(e), key, writing=True)
            if not error.retryable:  # the store answers: clean up now (an unreachable one: at the batch's end)
                self.sweep_orphans(key, started)
            raise error from None
        self.sweep_orphans(key, started)
        return self._stored(key, src.bytes_read, src.md5, result)

    def _last_activity(self, client, upload) -> float:
        """When an open multipart upload last did anything: its newest part, else its start."""
        parts = client.list_parts(Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]).get("Parts", [])
        return max([upload["Initiated"].timestamp()] + [p["LastModified"].timestamp() for p in parts])

    def finish_batch(self, big_items, since: float, failed_keys=frozenset()) -> int:
        """After a batch: abort every multipart upload still open for a key this batch sent in parts.

        Those are this tool's orphans: uploads begun before this run (a run killed by SIGTERM or
        ``kill -9``, a store restarted mid-batch) of keys it has just written again, and this run's
        own uploads of keys that failed in any pass (the abort of a failed upload does not reach a
        store that was down). Left alone, as another writer's live upload: one begun during this run
        of a key this run stored, and one begun earlier that sent a part within
        ``orphan_idle_seconds``. One paged listing per key prefix.
        """
        keys = {i.key for i in big_items if i.size > self.part_size_for(i.size)}
        if not keys:
            return 0
        now = time.time()
        try:
            client = self._sweeper_job().result()
        except ImportError:
            return 0
        aborted = 0
        for prefix in sorted({k.rsplit("/", 1)[0] + "/" if "/" in k else "" for k in keys}):
            paginator = client.get_paginator("list_multipart_uploads")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                for upload in page.get("Uploads", []):
                    key = upload["Key"]
                    if key not in keys:
                        continue
                    if key not in failed_keys:
                        if upload["Initiated"].timestamp() >= since - 5:
                            continue  # begun during this run, of a key this run stored: another live writer
                        if now - self._last_activity(client, upload) < self.orphan_idle_seconds:
                            continue  # begun earlier but still sending parts: a live writer, not an orphan
                    client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload["UploadId"])
                    aborted += 1
        if aborted:
            log.warning("%s: aborted %d multipart upload(s) left open by earlier or failed uploads", self.section,
                        aborted)
        return aborted

    def sweep_orphans(self, key: str, since: float) -> int:
        """Abort multipart uploads of ``key`` begun since ``since`` that hold no parts.

        When the answer to CreateMultipartUpload is lost, the engine retries and the first upload
        id is left open, invisible and billed (boto3 leaves it too). Such an orphan has no parts:
        every part went to the retried upload. Uploads with parts (another writer's, live) are
        never touched. Needs boto3 (installed with this provider's extra); skipped without it.
        """
        try:
            client = self._sweeper_job().result()
        except ImportError:
            return 0
        except Exception as e:
            log.warning("%s: cannot check for orphaned multipart uploads: %s", self.section,
                        self.redact(one_line(e, 200)))
            return 0
        aborted = 0
        try:
            listing = client.list_multipart_uploads(Bucket=self.bucket, Prefix=key)
            for upload in listing.get("Uploads", []):
                initiated = upload["Initiated"].timestamp()
                if upload["Key"] != key or initiated < since - 5:
                    continue
                parts = client.list_parts(Bucket=self.bucket, Key=key, UploadId=upload["UploadId"])
                if not parts.get("Parts"):
                    client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload["UploadId"])
                    aborted += 1
                    log.info("%s: aborted an orphaned multipart upload of %s", self.section, key)
        except Exception as e:  # the sweep is a courtesy: never turn an upload's outcome into a failure
            log.warning("%s: could not check for orphaned multipart uploads of %s: %s", self.section, key,
                        self.redact(one_line(e, 200)))
        return aborted

    def _sweeper_job(self) -> Future:
        """The boto3 client for the sweep, built once on a background thread.

        Importing boto3 and building a client takes a quarter of a second of CPU; started when a
        multipart upload starts, it is ready by the time the upload ends instead of adding to it.
        """
        from concurrent.futures import Future

        with self._sweeper_lock:
            if self._sweeper is None:
                job: Future = Future()

                def build() -> None:
                    try:
                        job.set_result(self._build_sweeper())
                    except BaseException as e:  # ImportError (no boto3) included: the sweep is skipped
                        job.set_exception(e)

                threading.Thread(target=build, name=f"{self.section}-sweeper", daemon=True).start()
                self._sweeper = job
            return self._sweeper

    def _build_sweeper(self):
        import boto3
        from botocore.config import Config

        kwargs: dict[str, Any] = {}
        if self._access_key:
            kwargs = {"aws_access_key_id": self._access_key, "aws_secret_access_key": self._secret_key}
        return boto3.session.Session().client(
            "s3", endpoint_url=self.endpoint_url, region_name=self.region, verify=self.verify_tls,
            config=Config(s3={"addressing_style": "virtual" if self.virtual_hosted_style else "path"},
                          request_checksum_calculation="when_required",
                          response_checksum_validation="when_required",
                          retries={"total_max_attempts": 1 + self.retry.max_retries, "mode": "standard"},
                          connect_timeout=self.retry.connect_timeout, read_timeout=self.retry.request_timeout),
            **kwargs)

    def put_bytes(self, data: bytes, key: str, md5: str | None = None) -> StoredObject:
        import hashlib

        import obstore as obs

        try:
            result = obs.put(self.store, key, data, use_multipart=False)
        except Exception as e:
            raise self._error(e, key, writing=True) from None
        return self._stored(key, len(data), md5 or hashlib.md5(data).hexdigest(), result)

    def stat(self, key: str) -> ObjectInfo | None:
        import obstore as obs

        try:
            meta = obs.head(self.store, key)
        except FileNotFoundError:
            return None
        except Exception as e:
            raise self._error(e, key) from None
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
            raise self._error(e, key) from None

    def sign_url(self, key: str, expires_seconds: int = 6 * 3600) -> str:
        """A pre-signed GET URL (for Druid's ``http`` input source); valid ``expires_seconds``."""
        from datetime import timedelta

        import obstore as obs

        with self.translating_errors(key):
            return obs.sign(self.store, "GET", key, timedelta(seconds=expires_seconds))

    def druid_input_source(self, keys: Iterable[str], **options: Any) -> dict:
        source: dict[str, Any] = {"type": "s3", "uris": [self.uri(k) for k in keys]}
        if self.quirks.druid_endpoint_config and self.endpoint_url:
            url = urlsplit(self.endpoint_url)
            plain = urlunsplit(url._replace(netloc=url.netloc.rsplit("@", 1)[-1]))  # never a URL's password
            source["endpointConfig"] = {"url": plain, "signingRegion": self.region}
            source["clientConfig"] = {"protocol": url.scheme or "https", "enablePathStyleAccess": True,
                                      "disableChunkedEncoding": True}
        return source

    def close(self) -> None:
        self._store = None
        self._sweeper = None

    @property
    def secrets(self) -> set[str]:
        return {s for s in (self._secret_key,) if s}
