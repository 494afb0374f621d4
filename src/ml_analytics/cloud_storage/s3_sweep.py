"""Open multipart uploads nobody will finish: finding and aborting them (S3 family).

obstore aborts a multipart upload that fails while it runs, but three kinds are left open, invisible
and billed: the first upload id of a CreateMultipartUpload whose answer was lost (the retry made a
second one), uploads of a run killed by SIGTERM or ``kill -9``, and uploads of a store that was
unreachable when the abort was due. obstore cannot list multipart uploads, so this uses boto3
(installed with the S3 extras), with the project's retry policy and timeouts, built on a background
thread while the first multipart upload runs (building a client costs a quarter of a second).

Nothing here touches another writer's live upload: only uploads of keys this run sent that are
provably abandoned, i.e. no part for longer than a live writer's part could take at the configured
timeouts (``retry_timeout`` + ``request_timeout``: one part's attempts and retries), or this run's own
failed attempts. An owner of a prefix (a Spark run) aborts everything under it, whatever its age.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future
from typing import Any

from ..errors import one_line
from ..retry import RetryPolicy

log = logging.getLogger(__name__)

# Clocks differ between client and store: an upload initiated up to this long before ``since`` still
# counts as begun during the run.
STARTED_GRACE = 5.0


def abandoned_after(retry: RetryPolicy) -> float:
    """Seconds without a part after which an open multipart upload is nobody's: longer than any part of
    a live writer could take at these timeouts (its attempts and retries), plus the clock grace."""
    return retry.total_timeout + retry.request_timeout + STARTED_GRACE


def boto3_client(*, endpoint_url: str | None, region: str, virtual_hosted_style: bool, verify_tls: bool,
                 retry: RetryPolicy, access_key: str | None, secret_key: str | None):
    """A boto3 S3 client obeying the project's retry policy and timeouts (its translation lives here)."""
    import boto3
    from botocore.config import Config

    kwargs: dict[str, Any] = {}
    if access_key:
        kwargs = {"aws_access_key_id": access_key, "aws_secret_access_key": secret_key}
    return boto3.session.Session().client(
        "s3", endpoint_url=endpoint_url, region_name=region, verify=verify_tls,
        config=Config(s3={"addressing_style": "virtual" if virtual_hosted_style else "path"},
                      request_checksum_calculation="when_required",
                      response_checksum_validation="when_required",
                      retries={"total_max_attempts": 1 + retry.max_retries, "mode": "standard"},
                      connect_timeout=retry.connect_timeout, read_timeout=retry.request_timeout),
        **kwargs)


class OrphanSweeper:
    """Finds and aborts orphaned multipart uploads of one bucket. ``make_client`` builds the boto3 client."""

    def __init__(self, section: str, bucket: str, make_client, redact, retry: RetryPolicy):
        self.section, self.bucket = section, bucket
        self.abandoned_after = abandoned_after(retry)
        self._make_client = make_client
        self._redact = redact
        self._job: Future | None = None
        self._lock = threading.Lock()

    def warm_up(self) -> Future:
        """Build the client on a background thread (once); the returned future holds it."""
        with self._lock:
            if self._job is None:
                job: Future = Future()

                def build() -> None:
                    try:
                        job.set_result(self._make_client())
                    except BaseException as e:  # ImportError (no boto3) included: the sweep is skipped
                        job.set_exception(e)

                threading.Thread(target=build, name=f"{self.section}-sweeper", daemon=True).start()
                self._job = job
            return self._job

    def _client(self):
        """The client, or None when boto3 is missing (the sweep is then skipped)."""
        try:
            return self.warm_up().result()
        except ImportError:
            return None

    def _last_activity(self, client, upload) -> float:
        """When an open multipart upload last did anything: its newest part, else its start."""
        parts = client.list_parts(Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]).get("Parts", [])
        return max([upload["Initiated"].timestamp()] + [p["LastModified"].timestamp() for p in parts])

    def _abort(self, client, key: str, upload_id: str) -> None:
        client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)

    def sweep_key(self, key: str, since: float) -> int:
        """Abort multipart uploads of ``key`` begun since ``since`` that hold no parts.

        When the answer to CreateMultipartUpload is lost, the retry makes a second upload and the first
        is left with no parts (every part went to the retried one). Uploads with parts (another writer's,
        live) are never touched. Never fails the upload it follows: problems are logged."""
        try:
            client = self._client()
        except Exception as e:
            log.warning("%s: cannot check for orphaned multipart uploads: %s", self.section,
                        self._redact(one_line(e, 200)))
            return 0
        if client is None:
            return 0
        aborted = 0
        try:
            listing = client.list_multipart_uploads(Bucket=self.bucket, Prefix=key)
            for upload in listing.get("Uploads", []):
                if upload["Key"] != key or upload["Initiated"].timestamp() < since - STARTED_GRACE:
                    continue
                parts = client.list_parts(Bucket=self.bucket, Key=key, UploadId=upload["UploadId"])
                if not parts.get("Parts"):
                    self._abort(client, key, upload["UploadId"])
                    aborted += 1
                    log.info("%s: aborted an orphaned multipart upload of %s", self.section, key)
        except Exception as e:  # the sweep is a courtesy: never turn an upload's outcome into a failure
            log.warning("%s: could not check for orphaned multipart uploads of %s: %s", self.section, key,
                        self._redact(one_line(e, 200)))
        return aborted

    def finish_batch(self, keys: set[str], since: float, failed_keys=frozenset()) -> int:
        """After a batch: abort multipart uploads still open for ``keys`` (sent in parts by this batch).

        Those are this tool's orphans: uploads begun before this run (a run killed by SIGTERM or
        ``kill -9``, a store restarted mid-batch) of keys it has just written again, idle for longer than a
        live writer could be (:func:`abandoned_after`), and this run's own uploads of keys that failed in
        any pass. Left alone, as another writer's live upload: one begun during this run of a key this run
        stored, and one that sent a part more recently than that. One paged listing per key prefix."""
        if not keys:
            return 0
        now = time.time()
        client = self._client()
        if client is None:
            return 0
        aborted = 0
        for prefix in sorted({k.rsplit("/", 1)[0] + "/" if "/" in k else "" for k in keys}):
            for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket, Prefix=prefix):
                for upload in page.get("Uploads", []):
                    key = upload["Key"]
                    if key not in keys:
                        continue
                    if key not in failed_keys:
                        if upload["Initiated"].timestamp() >= since - STARTED_GRACE:
                            continue  # begun during this run, of a key this run stored: another live writer
                        if now - self._last_activity(client, upload) < self.abandoned_after:
                            continue  # begun earlier, but it may still be sending parts: not provably abandoned
                    self._abort(client, key, upload["UploadId"])
                    aborted += 1
        if aborted:
            log.warning("%s: aborted %d multipart upload(s) left open by earlier or failed uploads", self.section,
                        aborted)
        return aborted

    def abort_under(self, prefix: str) -> int:
        """Abort every open multipart upload under ``prefix``, whatever its age (its owner says so)."""
        client = self._client()
        if client is None:
            return 0
        aborted = 0
        for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket, Prefix=prefix):
            for upload in page.get("Uploads", []):
                if upload["Key"].startswith(prefix):
                    self._abort(client, upload["Key"], upload["UploadId"])
                    aborted += 1
        return aborted

    def close(self) -> None:
        self._job = None
