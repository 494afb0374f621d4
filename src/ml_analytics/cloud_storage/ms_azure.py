"""AZURE: Azure Blob Storage. Uploads send their own requests (:mod:`.azure_rest`, big files staged by
:mod:`.azure_blocks`); the rest uses azure-storage-blob 12.

Credentials: exactly one of ``account_key``, ``sas_token`` or ``connection_string`` (the seed's
config carries both key and SAS placeholders; the empty one counts as unset). ``endpoint_url``
points at another blob endpoint (Azurite: ``http://127.0.0.1:PORT/devstoreaccount1``).

Integrity: every request body carries a checksum the service verifies. A single Put Blob (files up
to 32 MiB) carries a Content-MD5, which Azure also keeps as the blob's Content-MD5. A big file's
blocks each carry ``x-ms-content-crc64`` (``checksum = crc64``, the default: Azure's CRC64, 0.04 ms
per MiB with awscrt against 1.2 for MD5) and the answer's own CRC64 is compared when the store gives
one; ``checksum = md5`` sends a Content-MD5 per block instead (Azurite verifies only MD5 and ignores
CRC64; in strict mode it refuses the header, and the upload switches to MD5 by itself). The whole
file's CRC64 is kept as blob metadata (``ml_analytics_crc64``) for skip-unchanged; its MD5 only with
``md5_multipart = true``. Each file is read once: the whole-file checksums are taken in order while
reading, each block's on the thread that stages it.

Nothing is lost on failure. Files up to 32 MiB go in one Put Blob (atomic). Bigger ones are staged
as 8 MiB blocks, several in flight, and committed with Put Block List only once the whole file was
read and found unchanged (size, mtime, inode); until then the stored blob is untouched. A failed
upload discards its staged blocks by re-committing the blob's own block list (or, when there was
no blob, committing an empty list and deleting it). A blob written by a single Put Blob has no
block list to re-commit, and Azure drops uncommitted blocks only on a commit or a Put Blob, so a
big upload over such a blob stages under a temporary name (``.ml-analytics-tmp/``) and is copied
onto the key server-side after its commit; that costs one Copy Blob (synchronous on Azurite and
for same-account block blobs on Azure) and happens only for that case.
obstore's Azure store is not used because it sends no per-request checksum.
"""

from __future__ import annotations

import base64
import logging
import os
import re
import threading
import uuid
from collections.abc import Iterator
from typing import Any

from ..checksums import crc64_header
from ..errors import (AlreadyExistsError, AuthenticationError, BucketNotFoundError, ConfigError, ConflictError,
                      IntegrityError,
                      MLAnalyticsError, NetworkError, ObjectNotFoundError, PermissionDeniedError,
                      ProviderNotInstalledError, StorageError, TransientError, error_class, one_line, storage_error)
from ..config import url_problem
from ..retry import RetryPolicy
from ..source import SourceFile
from .azure_blocks import BlockBuffers, BlockStager
from .azure_rest import BlobRest, RequestFailed, error_code
from .base import CloudProvider, ObjectInfo, Option, StoredObject
from .capabilities import CreateOnly, Locatable, PrefixCleanup, ReadBack, StoreLocation

log = logging.getLogger(__name__)
MiB = 1024 * 1024
SINGLE_PUT_LIMIT = 32 * MiB
BLOCK_SIZE = 8 * MiB
TEMP_PREFIX = ".ml-analytics-tmp/"  # big uploads over a Put Blob blob are staged here, then copied
PUT_BLOB = "put-blob"  # an existing blob without a block list
CRC64_METADATA = "ml_analytics_crc64"  # the whole blob's CRC-64/NVME (hex), set on blobs sent in blocks
CHECKSUMS = ("crc64", "md5")
_PERMISSION_CODES = ("AuthorizationPermissionMismatch", "AuthorizationResourceTypeMismatch",
                     "InsufficientAccountPermissions")
# Blob service error codes that say more than their status does.
CODE_ERRORS: dict[str, type[StorageError]] = {
    **dict.fromkeys(("AuthenticationFailed", "AuthorizationFailure", "InvalidAuthenticationInfo"), AuthenticationError),
    **dict.fromkeys(_PERMISSION_CODES, PermissionDeniedError),
    "ContainerNotFound": BucketNotFoundError,
    **dict.fromkeys(("Md5Mismatch", "InvalidMd5", "Crc64Mismatch", "InvalidCrc64"), IntegrityError),
    "InvalidBlockList": ConflictError,
}


def _parse_connection_string(text: str) -> dict[str, str]:
    out = {}
    for part in text.split(";"):
        if "=" in part:
            k, v = part.split("=", 1)
            out[k.strip()] = v.strip()
    return out


class MSAzure(CloudProvider):
    section = "AZURE"
    capabilities = frozenset({ReadBack, Locatable, CreateOnly, PrefixCleanup})
    default_concurrency = 32  # small blobs in flight: 32 kept Azurite busier than 16 (~6 % more files/s)
    description = "Azure Blob Storage."
    extra = "azure"
    uri_scheme = "azure"
    options = (
        Option("account_name", "storage account name", arg="accountName"),
        Option("container_name", "container", required=True, arg="containerName"),
        Option("account_key", "account key (one of account_key, sas_token, connection_string)", secret=True,
               arg="accountKey"),
        Option("sas_token", "SAS token", secret=True, arg="sasToken"),
        Option("connection_string", "connection string", secret=True, arg="connectionString"),
        Option("endpoint_url", "blob endpoint URL (default https://ACCOUNT.blob.core.windows.net)",
               arg="endpoint_url", kind="url"),
        Option("max_concurrency", "blocks of one file in flight", default="8", kind="int", arg="maxConcurrency"),
        Option("checksum", "checksum on every block, verified by the service: crc64 (cheap) or md5 (what Azurite "
               "verifies)", default="crc64", arg="checksum"),
        Option("md5_multipart", "also compute a whole-file MD5 for files sent in blocks, kept as the blob's "
               "Content-MD5 (costs CPU)", default="false", kind="bool", arg="md5Multipart"),
        Option("verify_tls", "verify TLS certificates (turning off logs a warning)", default="true", kind="bool",
               arg="verifyTls"),
    )

    def __init__(self, accountName: str | None = None, sasToken: str | None = None,  # noqa: N803 (seed names)
                 containerName: str | None = None, accountKey: str | None = None,
                 connectionString: str | None = None, endpoint_url: str | None = None, maxConcurrency: int = 8,
                 verifyTls: bool = True, checksum: str = "crc64", md5Multipart: bool = False,
                 retry: RetryPolicy | None = None):
        given = [name for name, value in (("account_key", accountKey), ("sas_token", sasToken),
                                          ("connection_string", connectionString)) if value]
        if len(given) != 1:
            what = "none is set" if not given else f"{' and '.join(given)} are all set"
            raise ConfigError(f"set exactly one of account_key, sas_token, connection_string ({what})",
                              section=self.section, key=given[-1] if given else "account_key")
        parts = _parse_connection_string(connectionString) if connectionString else {}
        if connectionString:
            accountName = accountName or parts.get("AccountName")
            endpoint_url = endpoint_url or parts.get("BlobEndpoint") or (
                f"{parts.get('DefaultEndpointsProtocol', 'https')}://{accountName}.blob."
                f"{parts.get('EndpointSuffix', 'core.windows.net')}" if accountName else None)
        if not accountName and not endpoint_url:
            raise ConfigError("account_name is required", section=self.section, key="account_name")
        if not containerName:
            raise ConfigError("container_name is required", section=self.section, key="container_name")
        self.account = accountName or ""
        self.bucket = containerName
        self.endpoint_url = (endpoint_url or f"https://{accountName}.blob.core.windows.net").rstrip("/")
        why = url_problem(self.endpoint_url)
        if why:  # from the connection string, or built from the account name
            raise ConfigError(f"the blob endpoint {why}; not used", section=self.section,
                              key="connection_string" if connectionString else "account_name")
        self.max_concurrency = max(1, maxConcurrency)
        self._buffers = BlockBuffers(BLOCK_SIZE, keep=self.max_concurrency + 2)  # reused by every big upload
        self.checksum = (checksum or "crc64").strip().lower()
        if self.checksum not in CHECKSUMS:
            raise ConfigError(f"expected crc64 or md5, got {checksum!r}", section=self.section, key="checksum")
        self.md5_multipart = md5Multipart
        self._crc64_unconfirmed = False  # warned once: the store gave no CRC64 of its own for a block
        self._checksum_lock = threading.Lock()
        self.verify_tls = verifyTls
        self.retry = retry or RetryPolicy()
        self._secret_key = accountKey
        self._secret_sas = sasToken.lstrip("?") if sasToken else None
        self._secret_connection_string = connectionString
        if connectionString:  # the upload path signs its own requests with the key (or SAS) inside
            self._secret_key = parts.get("AccountKey") or None
            self._secret_sas = (parts.get("SharedAccessSignature") or "").lstrip("?") or None
        self._container = None
        self._rest = None

    # -- client -----------------------------------------------------------------------------------
    def _sdk_retry(self) -> dict:
        """The project's retry policy in azure-storage-blob's terms. Its own policy (15 s first backoff, no
        overall deadline) is replaced: at most ``max_retries`` retries, none started once ``total_timeout``
        seconds have passed since the first attempt (the backoff is cut to what is left), each attempt
        bounded by ``connect_timeout`` and ``request_timeout`` (between bytes)."""
        import time

        from azure.storage.blob import ExponentialRetry

        policy = self.retry

        class _Retry(ExponentialRetry):
            def configure_retries(self, request):
                settings = super().configure_retries(request)
                settings["deadline"] = time.monotonic() + policy.total_timeout
                return settings

            def get_backoff_time(self, settings):
                return min(policy.backoff(settings["count"]), max(0.0, settings["deadline"] - time.monotonic()))

            def increment(self, settings, request, response=None, error=None):
                if time.monotonic() >= settings["deadline"]:
                    return False
                return super().increment(settings, request, response, error)

        n = policy.max_retries
        return {"retry_policy": _Retry(retry_total=n, retry_connect=n, retry_read=n, retry_status=n,
                                       retry_to_secondary=False),
                "connection_timeout": policy.connect_timeout, "read_timeout": policy.request_timeout}

    @property
    def container(self):
        if self._container is None:
            try:
                from azure.storage.blob import BlobServiceClient
            except ImportError:
                raise ProviderNotInstalledError(
                    "[AZURE] needs azure-storage-blob: pip install 'ml-analytics-cloud[azure]'") from None
            kwargs: dict[str, Any] = dict(self._sdk_retry(), max_single_put_size=SINGLE_PUT_LIMIT,
                                          max_block_size=BLOCK_SIZE, connection_verify=self.verify_tls)
            if not self.verify_tls:
                log.warning("AZURE: TLS certificate verification is OFF (verify_tls = false)")
            if self._secret_connection_string:
                service = BlobServiceClient.from_connection_string(self._secret_connection_string, **kwargs)
            else:
                credential: Any = ({"account_name": self.account, "account_key": self._secret_key}
                                   if self._secret_key else self._secret_sas)
                service = BlobServiceClient(self.endpoint_url, credential=credential, **kwargs)
            self._container = service.get_container_client(self.bucket)
        return self._container

    @property
    def rest(self) -> BlobRest:
        """The upload path's own requests (see :mod:`._azure_rest`)."""
        if self._rest is None:
            if not self.verify_tls:
                log.warning("AZURE: TLS certificate verification is OFF (verify_tls = false)")
            self._rest = BlobRest(self.endpoint_url, self.bucket, account=self.account, key=self._secret_key,
                                  sas=self._secret_sas, verify_tls=self.verify_tls, retry=self.retry)
        return self._rest

    def map_error(self, exc: BaseException, key: str = "", writing: bool = False) -> MLAnalyticsError:
        """One mapping for our own requests' failures and the SDK's: status and Blob error code, through
        :data:`ml_analytics.errors.STATUS_ERRORS` refined by :data:`CODE_ERRORS`."""
        if isinstance(exc, MLAnalyticsError):
            return exc
        kw = {"provider": self.section, "bucket": self.bucket, "key": key}
        if isinstance(exc, RequestFailed):
            reply = exc.reply
            if reply is None:
                summary = self.redact(f"{type(exc.cause).__name__}: {one_line(exc.cause, 200)}")
                return storage_error(NetworkError, summary, where=self.endpoint_url, **kw)
            code, status = error_code(reply), reply.status
            message = re.search(rb"<Message>(.*?)</Message>", reply.body, re.S)
            reason = message.group(1).decode("utf-8", "replace").split("\n")[0] if message else ""
            network = False
        else:
            from azure.core import exceptions as aexc

            code = getattr(exc, "error_code", None) or ""
            status = getattr(exc, "status_code", None)
            reason = getattr(exc, "reason", None) or str(exc)
            network = isinstance(exc, aexc.ServiceRequestError)
            if isinstance(exc, aexc.ServiceResponseError):
                status = status or 500
        summary = self.redact(f"{code or status or type(exc).__name__}: {one_line(reason or status, 200)}")
        cls = CODE_ERRORS.get(code)
        if cls is None:
            cls = NetworkError if network else error_class(status) if status else StorageError
            if cls is PermissionDeniedError:  # a 403 without a permission code: the key or SAS is wrong
                cls = AuthenticationError
            if cls is ObjectNotFoundError and writing:
                cls = BucketNotFoundError
        if cls is BucketNotFoundError:
            return BucketNotFoundError(f"container does not exist ({summary})", **kw)
        if cls is ConflictError and code == "InvalidBlockList":
            return ConflictError(f"another writer committed this blob while the upload ran; this upload's blocks "
                                 f"were dropped, nothing of it stored ({summary})", **kw)
        if cls is StorageError:
            return StorageError(summary, **kw)
        return storage_error(cls, summary, where=self.endpoint_url, **kw)

    # -- contract -------------------------------------------------------------------------------------
    def put_file(self, path: str | os.PathLike, key: str) -> StoredObject:
        src = SourceFile(path)
        if src.size <= SINGLE_PUT_LIMIT:
            return self.put_bytes(src.read_all(), key, src.md5)
        with self.translating_errors(key, writing=True):
            return self._put_blocks(src, key)

    def put_bytes(self, data: bytes, key: str, md5: str | None = None, *, new: bool = False) -> StoredObject:
        """One Put Blob: a transactional Content-MD5 the service checks, and the MD5 stored with the blob
        (``new``: only if no blob is there, ``If-None-Match: *``)."""
        import hashlib

        md5 = md5 or hashlib.md5(data).hexdigest()
        b64 = base64.b64encode(bytes.fromhex(md5)).decode()
        headers = {"x-ms-blob-type": "BlockBlob", "content-md5": b64, "x-ms-blob-content-md5": b64,
                   "x-ms-blob-content-type": "application/octet-stream"}
        if new:
            headers["if-none-match"] = "*"
        try:
            reply = self.rest.request("PUT", key, body=data, headers=headers)
        except RequestFailed as e:
            if new and e.status in (409, 412) and error_code(e.reply) in ("BlobAlreadyExists", "ConditionNotMet"):
                raise AlreadyExistsError(f"{self.uri(key)} exists already", provider=self.section,
                                         bucket=self.bucket, key=key) from None
            raise self.map_error(e, key, writing=True) from None
        if reply.status == 404:
            raise self.map_error(RequestFailed(reply), key, writing=True)
        return StoredObject(self.section, key, self.uri(key), len(data), md5,
                            etag=reply.headers.get("etag", "").strip('"') or None)

    def put_bytes_new(self, data: bytes, key: str) -> StoredObject:
        return self.put_bytes(data, key, new=True)

    def abort_uploads_under(self, prefix: str) -> int:
        """Drop the uncommitted blocks of every blob under ``prefix`` (an upload that died before its Put
        Block List): the blob's own committed list is re-committed, or the empty blob removed."""
        dropped = 0
        with self.translating_errors(prefix):
            for props in self.container.list_blobs(name_starts_with=self.list_prefix(prefix) or None,
                                                   include=["uncommittedblobs"]):
                committed, uncommitted = self.container.get_blob_client(props.name).get_block_list("all")
                if uncommitted:
                    self._discard(props.name, RuntimeError("its writer is gone"))
                    dropped += 1
        return dropped

    def buffer_bytes(self, size: int) -> int:
        if size <= SINGLE_PUT_LIMIT:
            return size
        return min(size, BLOCK_SIZE * (self.max_concurrency + 2))  # blocks read but not yet staged and hashed

    # -- big files: staged blocks, committed only once the whole file is read and verified ------------------
    def _put_blocks(self, src: SourceFile, key: str) -> StoredObject:
        """Stage the file as blocks (each with its own checksum, checked by the service), read once with
        the whole-file checksums computed on the way; commit only if the file did not change meanwhile.

        Until the commit nothing is visible, and a failure discards the staged blocks without touching
        the committed blob (see :meth:`_discard`). Azure cannot drop uncommitted blocks of a blob that
        was written by a single Put Blob without rewriting it, so over such a blob the blocks are staged
        under a temporary name and copied server-side after the commit (:meth:`_copy_over`).
        """
        before = self._committed_blocks(key)
        target = key if before is not PUT_BLOB else f"{TEMP_PREFIX}{uuid.uuid4().hex}"
        ids: list[str] = []
        try:
            nonce = uuid.uuid4().hex  # block ids of one upload: same length, never reused by another upload
            stager = BlockStager(lambda i, block: self._stage(target, ids[i], block), block_size=BLOCK_SIZE,
                                 in_flight=self.max_concurrency, whole_md5=self.md5_multipart, buffers=self._buffers)
            ids.extend(f"{nonce}{i:06d}" for i in range(stager.count(src.size)))
            whole_crc64, md5 = stager.run(src)
            src.check_unchanged()  # the blocks are staged, nothing is committed yet: refuse a changed file
            etag = self._commit(target, ids, whole_crc64, md5)
        except BaseException as e:
            if ids:  # blocks may have been staged
                self._discard(target, e)
            raise
        if target != key:
            etag = self._copy_over(key, target)
        return StoredObject(self.section, key, self.uri(key), src.size, md5, etag=str(etag or "").strip('"') or None)

    def _block_list(self, name: str, attempts: int | None = None) -> list[str] | None:
        """Committed block ids of a blob, None if it has no committed blob or block list entry."""
        import xml.etree.ElementTree as ET

        reply = self.rest.request("GET", name, query={"comp": "blocklist", "blocklisttype": "committed"},
                                  attempts=attempts)
        if reply.status == 404:
            if error_code(reply) == "ContainerNotFound":
                raise RequestFailed(reply)
            return None
        root = ET.fromstring(reply.body)
        return [base64.b64decode(n.text or "").decode() for n in root.iterfind("./CommittedBlocks/Block/Name")]

    def _committed_blocks(self, key: str):
        """The blob's committed block ids; None when there is no committed blob; PUT_BLOB when it
        exists but has no block list (written by a single Put Blob)."""
        committed = self._block_list(key)
        if committed:
            return committed
        if committed is not None and self.rest.request("HEAD", key).status != 404:
            return PUT_BLOB
        return None  # no blob, or only uncommitted blocks (someone's failed upload)

    def _commit(self, target: str, ids: list[str], whole_crc64: str, md5: str | None) -> str | None:
        """Put Block List with the whole-file CRC64 as metadata (and the MD5, when taken, as the blob's
        Content-MD5). If the answer is lost after the store committed, the retry finds the blocks
        committed already (Latest) and succeeds."""
        body = "".join(f"<Latest>{base64.b64encode(i.encode()).decode()}</Latest>" for i in ids)
        body = f'<?xml version="1.0" encoding="utf-8"?><BlockList>{body}</BlockList>'.encode()
        headers = {f"x-ms-meta-{CRC64_METADATA}": whole_crc64, "x-ms-blob-content-type": "application/octet-stream",
                   "content-type": "application/xml"}
        if md5:
            headers["x-ms-blob-content-md5"] = base64.b64encode(bytes.fromhex(md5)).decode()
        try:
            reply = self.rest.request("PUT", target, query={"comp": "blocklist"}, body=body, headers=headers)
            if reply.status == 404:
                raise RequestFailed(reply)
            return reply.headers.get("etag")
        except RequestFailed:
            etag = self._landed(target, ids)  # the commit may have happened and only its answer was lost
            if etag is None:
                raise
            return etag

    def _stage(self, target: str, block_id: str, block: bytes | memoryview) -> None:
        """Put Block with the block's checksum, which the service verifies before it keeps the block."""
        import hashlib

        query = {"comp": "block", "blockid": base64.b64encode(block_id.encode()).decode()}
        ours = None if self.checksum == "md5" else crc64_header(block)
        headers = {"x-ms-content-crc64": ours} if ours else {
            "content-md5": base64.b64encode(hashlib.md5(block).digest()).decode()}
        try:
            reply = self.rest.request("PUT", target, body=block, query=query, headers=headers)
        except RequestFailed as e:
            if not ours or e.reply is None or error_code(e.reply) != "FeatureNotSupported":
                raise
            with self._checksum_lock:
                switched, self.checksum = self.checksum != "md5", "md5"
            if switched:
                log.warning("AZURE: %s does not take CRC64 checksums (Azurite in strict mode?); "
                            "blocks carry an MD5 instead", self.endpoint_url)
            return self._stage(target, block_id, block)
        if ours:
            theirs = reply.headers.get("x-ms-content-crc64")
            if theirs is not None and reply.status < 300 and theirs != ours:
                raise IntegrityError(f"the store computed CRC64 {theirs} for a block sent with {ours}; not stored",
                                     provider=self.section, bucket=self.bucket, key=target)
            if theirs is None and reply.status < 300 and not self._crc64_unconfirmed:
                with self._checksum_lock:
                    first, self._crc64_unconfirmed = not self._crc64_unconfirmed, True
                if first:
                    log.warning("AZURE: %s did not report its own CRC64 of the blocks, so it may not have "
                                "checked them (Azurite ignores CRC64); [AZURE] checksum = md5 sends the check "
                                "every Azure-compatible store makes", self.endpoint_url)
        if reply.status == 404:
            raise RequestFailed(reply)

    def _landed(self, target: str, ids: list[str]) -> str | None:
        """ETag of ``target`` if its committed block list is exactly ``ids`` (our commit happened), else None."""
        try:
            if self._block_list(target, attempts=1) == ids:
                return self.rest.request("HEAD", target, attempts=1).headers.get("etag")
        except RequestFailed:
            pass
        return None

    def _discard(self, target: str, error: BaseException) -> None:
        """Drop the blocks this upload staged on ``target`` and leave its committed content as it was.

        Azure discards uncommitted blocks when a block list is committed, so: re-commit the blob's own
        committed block list (content and properties unchanged, If-Match its ETag); when there is no
        committed blob, commit an empty list (If-None-Match: *) and delete that empty blob. A blob
        written by a single Put Blob (no block list) is never a target here (see :meth:`_put_blocks`);
        should one appear meanwhile it is left alone: it is another writer's, and its Put Blob
        already discarded our blocks.
        """
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceNotFoundError
        from azure.storage.blob import BlobBlock, BlockState

        target = self.container.get_blob_client(target)

        # The store is unreachable or failing: one attempt per request, the run must end.
        quick = {"retry_total": 0} if isinstance(self.map_error(error), (NetworkError, TransientError)) or \
            not isinstance(error, Exception) else {}
        try:
            committed, uncommitted = target.get_block_list("all", **quick)
            if not uncommitted:
                return
            try:
                props = target.get_blob_properties(**quick)
            except ResourceNotFoundError:
                props = None
            if props is None:
                empty = target.commit_block_list([], if_none_match="*", **quick)
                target.delete_blob(etag=empty["etag"], match_condition=MatchConditions.IfNotModified, **quick)
            elif committed:
                target.commit_block_list([BlobBlock(b.id, BlockState.COMMITTED) for b in committed],
                                         content_settings=props.content_settings, metadata=props.metadata,
                                         etag=props.etag, match_condition=MatchConditions.IfNotModified, **quick)
            else:
                log.warning("AZURE: %s was rewritten by another client during the upload; left as it is",
                            target.blob_name)
        except Exception as e:  # best effort: the upload's own error is what the user needs to see
            log.warning("AZURE: could not discard uncommitted blocks of %s: %s", target.blob_name,
                        self.redact(one_line(e, 200)))

    def _copy_over(self, key: str, temp_name: str) -> str | None:
        """Server-side copy of the committed temporary blob onto ``key``, then delete the temporary one.

        The temporary blob is deleted only after the copy succeeded: a copy that failed, was aborted or
        is still pending may have left ``key`` empty (Azure's rule for a failed copy), and then the
        temporary blob is the one whole copy of the new data; the error names it."""
        import time

        blob, temp = self.container.get_blob_client(key), self.container.get_blob_client(temp_name)
        status = None
        started = False
        try:
            copy = blob.start_copy_from_url(temp.url)
            started = True  # from here a failed copy may have emptied the key: the temporary blob stays
            status, deadline = copy.get("copy_status"), time.monotonic() + self.retry.total_timeout
            while status == "pending" and time.monotonic() < deadline:  # same-account copies finish quickly
                time.sleep(0.2)
                status = blob.get_blob_properties().copy.status
            if status != "success":
                raise StorageError(f"server-side copy from the temporary blob ended as {status!r}; "
                                   f"{temp_name} is kept (it holds the uploaded file whole)",
                                   provider=self.section, bucket=self.bucket, key=key)
            return blob.get_blob_properties().etag
        finally:
            if status == "success" or not started:
                try:
                    temp.delete_blob()
                except Exception as e:
                    log.warning("AZURE: could not delete temporary blob %s: %s", temp_name,
                                self.redact(one_line(e, 200)))

    def stat(self, key: str) -> ObjectInfo | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            props = self.container.get_blob_client(key).get_blob_properties()
        except ResourceNotFoundError:
            return None
        except Exception as e:
            raise self.map_error(e, key) from None
        return self._info(props)

    @staticmethod
    def _info(props) -> ObjectInfo:
        md5 = props.content_settings.content_md5 if props.content_settings else None
        crc = (props.metadata or {}).get(CRC64_METADATA)
        return ObjectInfo(props.name, props.size, etag=str(props.etag).strip('"'),
                          md5=bytes(md5).hex() if md5 else None, last_modified=props.last_modified,
                          crc64=crc if crc and re.fullmatch(r"[0-9a-f]{16}", crc) else None)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        with self.translating_errors():
            for props in self.container.list_blobs(name_starts_with=self.list_prefix(prefix) or None,
                                                   include=["metadata"]):
                yield self._info(props)

    def delete(self, key: str) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            self.container.delete_blob(key)
        except ResourceNotFoundError:
            return
        except Exception as e:
            raise self.map_error(e, key) from None

    def uri(self, key: str) -> str:
        return f"azure://{self.bucket}/{key}"

    def get_bytes(self, key: str) -> bytes:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return self.container.get_blob_client(key).download_blob().readall()
        except ResourceNotFoundError as e:
            if getattr(e, "error_code", "") == "ContainerNotFound":
                raise self.map_error(e, key) from None
            raise ObjectNotFoundError("no such object", provider=self.section, bucket=self.bucket, key=key) from None
        except Exception as e:
            raise self.map_error(e, key) from None

    def location(self) -> StoreLocation:
        default = f"https://{self.account}.blob.core.windows.net" if self.account else None
        endpoint = None if self.endpoint_url == default else self.endpoint_url
        return StoreLocation("azure", self.bucket, endpoint=endpoint, account=self.account)

    def close(self) -> None:
        if self._rest is not None:
            self._rest.close()
            self._rest = None
        if self._container is not None:
            self._container.close()
            self._container = None
