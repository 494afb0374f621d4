"""A stand-in for ml-core-service's storage actions API, signing real URLs for the local stores.

THIS IS A TEST DOUBLE. ml-core-service (Node.js, project-sunbird/ml-core-service) needs MongoDB, Kafka,
Keycloak keys and a cloud account, and cannot run here. This double answers the one route ml-analytics
uses, ``POST /v1/cloud-services/storage/actions``, as the service's release-6.0.0 source does, written
from reading: ``generics/middleware/authenticator.js`` (the internal-access-token check and its 401
body), ``routes/index.js`` (routing, the 400 body of validation errors, the 404 plain text, the success
envelope), ``module/cloud-services/storage/validator/v1.js`` (what is validated),
``controllers/v1/cloud-services/storage.js`` and ``module/cloud-services/storage/helper.js`` (the
500 "Failed to generate signed url"), ``module/files/helper.js`` ``preSignedUrls`` (key =
folderPath + name, the entries' fields and order, files in request order), and the cloud client it
calls, npm ``client-cloud-services`` 3.0.6 (``getSignedUrl``, ``getDownloadableUrl``,
``getFileUrlForIngestion`` per cloud, and their expiry units: minutes for Azure and GCS, seconds for
S3 and OCI). Behaviour reproduced:

* no or a wrong ``internal-access-token``: 401 ``{"status": "ERR_TOKEN_FIELD_MISSING", "message":
  "Required field token is missing", "currentDate": <fixed when the service started>}``, whatever the path;
* validation (``action`` signedUrl|downloadableUrl, ``request``, for signedUrl a non-empty ``folderPath``
  and ``operation`` read|write, a non-empty ``bucketName``): 400 ``{"status": 400, "message": [{"location":
  "body", "param", "msg", "value"}]}``;
* ``request.files`` missing, not a list or empty, or a signing failure: 500 ``{"status": 500, "message":
  "Failed to generate signed url"}``;
* success: 200 ``{"message": "Url generated successfully", "status": 200, "result": {"files": [{"file",
  "payload": {"sourcePath"}, "cloudStorage", "downloadableUrl", "url", "inputSource"}]}}``; the bucket is
  the caller's (the service signs for any bucket name it is given); an unknown path: 404 ``Not Found``.

The URLs are real: SigV4 query signatures over the host only for S3/OCI (SeaweedFS checks them,
expiry included), service-SAS URLs for Azure (Azurite checks them), and GCS V2 signed URLs made by
google-cloud-storage with an RSA service-account key generated here (the real client signs V2 with
``contentType: multipart/form-data`` for writes and returns getSignedUrl's one-element array as
``url``, which the double reproduces).

GCS: fake-gcs-server has no XML API (a ``PUT /bucket/object`` is taken for a JSON-API upload and
refused), so a signed URL cannot be sent to it as such. The most faithful option found is
:class:`GcsXmlGateway`, a small server the GCS URLs point at instead of storage.googleapis.com: it
checks the V2 signature with the key's public half and the expiry (``400 ExpiredToken``, ``403
SignatureDoesNotMatch``, GCS's XML error bodies), checks a Content-MD5 if one is sent (``400
BadDigest``), and stores and reads through fake-gcs-server's JSON API (a ranged read included),
answering as GCS's XML API does (``ETag`` of the MD5 in hex, ``x-goog-hash``). The objects live in
fake-gcs-server, where the tests read them back with the GCS SDK. On the service's branch head the GCS
client's ``getDownloadableUrl`` reads the object's metadata, which fails for an object not written
yet (the whole request then answers 500); the double gives GCS entries no ``downloadableUrl`` (as
RC22-24 did) so that the GCS path can be tested at all.

Switches, for the failure tests (each counts down one signing request at a time): ``expired`` (URLs that
ended ``expired_by`` seconds before they were handed out: the store checks and refuses them),
``expire_first`` (the first URL of every key expired), ``failures`` (500 answers), ``short`` (the last
file of the request gets no URL). ``token`` may be
changed at any time. ``requests`` records every request's body and whether its token was right
(never the token); ``issued`` every URL handed out.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote, unquote, urlsplit

ACTIONS = "/v1/cloud-services/storage/actions"
UNAUTHORIZED = {"status": "ERR_TOKEN_FIELD_MISSING", "message": "Required field token is missing"}
FAILED_SIGNING = {"status": 500, "message": "Failed to generate signed url"}
DEFAULT_EXPIRY = 60 * 30  # NO_OF_EXPIRY_TIME * NO_OF_MINUTES, when the request gives none


class _Server:
    """A threading HTTP/1.1 server on loopback calling ``handle(handler)`` for every request."""

    def __init__(self, handle):
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _any(self):
                try:
                    handle(self)
                except _ShortBody:  # as a store does with an interrupted request: nothing stored, no answer
                    self.close_connection = True

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class _ShortBody(Exception):
    """The client stopped before the body's declared length: nothing is done with what arrived."""


def _read_body(h) -> bytes:
    n = int(h.headers.get("Content-Length") or 0)
    body = h.rfile.read(n) if n else b""
    if len(body) != n:
        h.close_connection = True
        raise _ShortBody()
    return body


def _send(h, status: int, body: bytes = b"", headers: dict | None = None, content_type: str | None = None):
    h.send_response(status)
    if content_type:
        h.send_header("Content-Type", content_type)
    for k, v in (headers or {}).items():
        h.send_header(k, v)
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    if h.command != "HEAD":
        h.wfile.write(body)


# -- signers: what client-cloud-services does per cloud --------------------------------------------------
class S3Signer:
    """aws / oci / s3: a SigV4 query signature over the host only (PutObject for "w", GetObject otherwise),
    path-style; expiry in seconds."""

    def __init__(self, endpoint: str, access_key: str, secret_key: str, region: str = "us-east-1",
                 provider: str = "aws"):
        self.endpoint = endpoint.rstrip("/")
        self.access_key, self.secret_key, self.region = access_key, secret_key, region
        self.cloud = provider  # CLOUD_STORAGE_PROVIDER
        self.minutes = False

    def sign(self, bucket: str, key: str, permission: str, expires: int, now: datetime) -> str:
        method = "PUT" if permission == "w" else "GET"
        amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
        host = urlsplit(self.endpoint).netloc
        path = f"/{quote(bucket, safe='')}/{quote(key, safe='/~')}"
        scope = f"{day}/{self.region}/s3/aws4_request"
        params = {"X-Amz-Algorithm": "AWS4-HMAC-SHA256", "X-Amz-Credential": f"{self.access_key}/{scope}",
                  "X-Amz-Date": amz_date, "X-Amz-Expires": str(int(expires)), "X-Amz-SignedHeaders": "host"}
        query = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(params.items()))
        canonical = "\n".join([method, path, query, f"host:{host}", "", "host", "UNSIGNED-PAYLOAD"])
        to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
        k = hmac.new(("AWS4" + self.secret_key).encode(), day.encode(), hashlib.sha256).digest()
        for part in (self.region, "s3", "aws4_request"):
            k = hmac.new(k, part.encode(), hashlib.sha256).digest()
        signature = hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()
        return f"{self.endpoint}{path}?{query}&X-Amz-Signature={signature}"

    def downloadable(self, bucket, key, expires, now):
        return self.sign(bucket, key, "r", expires, now)

    @staticmethod
    def ingestion(bucket: str, key: str) -> dict:
        return {"type": "s3", "uris": [f"s3://{bucket}/{key}"]}


class AzureSigner:
    """azure: a blob service SAS (permission as given, "r" by default), valid from ``expiresIn`` minutes
    ago until ``expiresIn`` minutes ahead; URL = the blob's URL + "?" + SAS."""

    cloud = "azure"
    minutes = True

    def __init__(self, blob_endpoint: str, account: str, key: str):
        self.endpoint, self.account, self.key = blob_endpoint.rstrip("/"), account, key

    def sign(self, bucket: str, key: str, permission: str, expires: int, now: datetime) -> str:
        from azure.storage.blob import BlobSasPermissions, generate_blob_sas

        perms = BlobSasPermissions(write=True) if permission == "w" else BlobSasPermissions(read=True)
        sas = generate_blob_sas(self.account, bucket, key, account_key=self.key, permission=perms,
                                start=now - timedelta(minutes=expires), expiry=now + timedelta(minutes=expires))
        return f"{self.endpoint}/{quote(bucket, safe='')}/{quote(key, safe='/~')}?{sas}"

    def downloadable(self, bucket, key, expires, now):
        return self.sign(bucket, key, "r", expires, now)

    @staticmethod
    def ingestion(bucket: str, key: str) -> dict:
        return {"type": "azure", "uris": [f"azure://{bucket}/{key}"]}


class GcsKey:
    """An RSA service-account key made for the tests: signs with google-cloud-storage, verified by the gateway."""

    def __init__(self):
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from google.oauth2 import service_account

        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
        self.public_key = private.public_key()
        self.email = "ml-core-double@ml-analytics-tests.iam.gserviceaccount.com"
        self.credentials = service_account.Credentials.from_service_account_info(
            {"type": "service_account", "client_email": self.email, "private_key": pem, "private_key_id": "double",
             "project_id": "ml-analytics-tests", "token_uri": "https://oauth2.googleapis.com/token"})


class GcsSigner:
    """gcloud: a V2 signed URL (google-cloud-storage's default for getSignedUrl), action write with content
    type multipart/form-data, or read; ``expiresIn`` in minutes; the URL points at the gateway."""

    cloud = "gcloud"
    minutes = True

    def __init__(self, gateway_endpoint: str, key: GcsKey):
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        self.endpoint, self.key = gateway_endpoint.rstrip("/"), key
        self._client = storage.Client(project="ml-analytics-tests", credentials=AnonymousCredentials())  # no request

    def sign(self, bucket: str, key: str, permission: str, expires: int, now: datetime) -> list[str]:
        from google.cloud import storage

        blob = storage.Blob(key, storage.Bucket(self._client, bucket))
        kw = {"method": "PUT", "content_type": "multipart/form-data"} if permission == "w" else {"method": "GET"}
        url = blob.generate_signed_url(expiration=int((now + timedelta(minutes=expires)).timestamp()), version="v2",
                                       api_access_endpoint=self.endpoint, credentials=self.key.credentials, **kw)
        return [url]  # getSignedUrl resolves to [url], and the service puts that array in "url" as it is

    def downloadable(self, bucket, key, expires, now):
        return None  # see the module docstring: on the branch head this fails for objects not written yet

    @staticmethod
    def ingestion(bucket: str, key: str) -> dict:
        return {"type": "google", "uris": [f"gs://{bucket}/{key}"]}


# -- the service ---------------------------------------------------------------------------------------------
class MLCoreDouble:
    """``url`` is the base URL the deployment configures (``[ML_CORE_SERVICE_URL] url``): the service behind
    an ingress path (``/ml-core``), as the Ansible role renders it."""

    def __init__(self, signer, token: str, *, prefix: str = "/ml-core"):
        self.signer, self.token, self.prefix = signer, token, prefix.rstrip("/")
        self.expired = 0
        self.expired_by = 60.0  # seconds before it was handed out that an "expired" URL ended
        self.expire_first = False  # every key's first URL expired (files signed concurrently: no race on a count)
        self._seen: set = set()
        self.failures = 0
        self.short = 0
        self.requests: list[dict] = []
        self.issued: list[str] = []  # every URL handed out (tests check none leaks into output)
        self.current_date = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
        self._lock = threading.Lock()
        self._server = _Server(self._handle)
        self.url = f"{self._server.endpoint}{self.prefix}"

    def _take(self, name: str) -> bool:
        with self._lock:
            left = getattr(self, name)
            if left > 0:
                setattr(self, name, left - 1)
                return True
            return False

    def _json(self, h, status: int, doc) -> None:
        _send(h, status, json.dumps(doc).encode(), content_type="application/json; charset=utf-8")

    def _handle(self, h) -> None:
        body = _read_body(h)
        path = urlsplit(h.path).path
        authorised = h.headers.get("internal-access-token") == self.token
        try:
            doc = json.loads(body) if body else {}
        except ValueError:
            doc = None
        self.requests.append({"method": h.command, "path": path, "authorised": authorised, "body": doc})
        if not authorised:  # no user token: internal-access-token decides, on every path
            return self._json(h, 401, {**UNAUTHORIZED, "currentDate": self.current_date})
        if path != self.prefix + ACTIONS:
            return _send(h, 404, b"Not Found", content_type="text/html; charset=utf-8")
        if not isinstance(doc, dict):
            return self._json(h, 400, {"status": 400, "message": "Unexpected token in JSON"})
        errors = self._validate(doc)
        if errors:
            return self._json(h, 400, {"status": 400, "message": errors})
        if self._take("failures"):
            return self._json(h, 500, FAILED_SIGNING)
        files = (doc.get("request") or {}).get("files") if isinstance(doc.get("request"), dict) else None
        if not isinstance(files, list) or not files:  # preSignedUrls: "File names not given."
            return self._json(h, 500, FAILED_SIGNING)
        try:
            entries = self._entries(doc, files)
        except Exception:  # a signing failure in the cloud client
            return self._json(h, 500, FAILED_SIGNING)
        if self._take("short"):
            entries = entries[:-1]
        self._json(h, 200, {"message": "Url generated successfully", "status": 200, "result": {"files": entries}})

    @staticmethod
    def _validate(doc: dict) -> list[dict]:
        errors = []

        def error(param, msg):
            entry = {"location": "body", "param": param, "msg": msg}
            if doc.get(param) is not None:
                entry["value"] = doc[param]
            errors.append(entry)

        action = doc.get("action")
        if action is None:
            error("action", "action is required")
        if action not in ("signedUrl", "downloadableUrl"):
            error("action", "Invalid value for action")
        if doc.get("request") is None:
            error("request", "request data is required")
        if action == "signedUrl":
            if not doc.get("folderPath"):
                error("folderPath", "required folderPath")
            if not doc.get("operation"):
                error("operation", "required operation")
            if doc.get("operation") not in ("read", "write"):
                error("operation", "Invalid value for operation. Allowed values: read/write")
        if not doc.get("bucketName"):
            error("bucketName", "required bucket name")
        return errors

    def _entries(self, doc: dict, files: list) -> list[dict]:
        expires = doc.get("expiresIn")
        expires = DEFAULT_EXPIRY if expires in (None, "") else int(expires)
        permission = "r" if doc.get("operation") == "read" else "w"
        if doc.get("action") != "signedUrl":
            permission = "r"
        now = datetime.now(timezone.utc)
        bucket, folder = doc["bucketName"], doc.get("folderPath") or ""
        with self._lock:
            first = [f"{folder}{name}" for name in files if f"{folder}{name}" not in self._seen]
            self._seen.update(first)
        if self._take("expired") or (self.expire_first and first):
            # handed out already expired: signed as if earlier, ending expired_by seconds ago
            span = timedelta(minutes=expires) if self.signer.minutes else timedelta(seconds=expires)
            now = now - span - timedelta(seconds=self.expired_by)
        entries = []
        for name in files:
            key = f"{folder}{name}" if folder else str(name)
            entry = {"file": key, "payload": {"sourcePath": key}, "cloudStorage": self.signer.cloud.upper()}
            downloadable = self.signer.downloadable(bucket, key, expires, now)
            if downloadable is not None:
                entry["downloadableUrl"] = downloadable
            entry["url"] = self.signer.sign(bucket, key, permission, expires, now)
            self.issued += [u for u in (entry.get("downloadableUrl"), entry["url"]) if isinstance(u, str)]
            self.issued += [u for u in entry["url"] if isinstance(entry["url"], list)]
            entry["inputSource"] = self.signer.ingestion(bucket, key)
            entries.append(entry)
        return entries

    def close(self) -> None:
        self._server.close()


# -- GCS's XML API in front of fake-gcs-server -----------------------------------------------------------------
def _gcs_error(h, status: int, code: str, message: str, **extra) -> None:
    details = "".join(f"<{k}>{v}</{k}>" for k, v in extra.items())
    body = (f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code><Message>{message}</Message>"
            f"{details}</Error>").encode()
    _send(h, status, body, content_type="application/xml; charset=UTF-8")


class GcsXmlGateway:
    """GCS's XML API for V2 signed URLs (PUT and GET, ranged or not), stored in fake-gcs-server (see the
    module docstring)."""

    def __init__(self, fake_gcs_endpoint: str, key: GcsKey):
        self.upstream = fake_gcs_endpoint.rstrip("/")
        self.key = key
        self._server = _Server(self._handle)
        self.port = self._server.port
        self.endpoint = self._server.endpoint

    def _upstream(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        req = urllib.request.Request(self.upstream + path, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def _verify(self, h, raw_path: str, query: dict) -> bool:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        try:
            expires = int(query.get("Expires", ""))
            signature = base64.b64decode(query.get("Signature", ""))
        except ValueError:
            _gcs_error(h, 400, "InvalidArgument", "Invalid argument.")
            return False
        if expires < time.time():
            when = datetime.fromtimestamp(expires, timezone.utc).isoformat()
            _gcs_error(h, 400, "ExpiredToken", "The provided token has expired.",
                       Details=f"Request signature expired at: {when}")
            return False
        extension = "".join(f"{k.lower()}:{v.strip()}\n"
                            for k, v in sorted(h.headers.items(), key=lambda kv: kv[0].lower())
                            if k.lower().startswith("x-goog-"))
        to_sign = (f"{h.command}\n{h.headers.get('Content-MD5', '')}\n{h.headers.get('Content-Type', '')}\n{expires}\n"
                   f"{extension}{raw_path}")
        try:
            self.key.public_key.verify(signature, to_sign.encode(), padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            _gcs_error(h, 403, "SignatureDoesNotMatch", "The request signature we calculated does not match the "
                       "signature you provided. Check your Google secret key and signing method.",
                       StringToSign=to_sign.replace("\n", "\\n"))
            return False
        if query.get("GoogleAccessId") != self.key.email:
            _gcs_error(h, 403, "AccessDenied", "Access denied.")
            return False
        return True

    def _handle(self, h) -> None:
        body = _read_body(h)
        parts = urlsplit(h.path)
        query = dict(p.split("=", 1) for p in parts.query.split("&") if "=" in p)
        query = {k: unquote(v) for k, v in query.items()}
        bucket, _, name = parts.path.lstrip("/").partition("/")
        bucket, name = unquote(bucket), unquote(name)
        if not bucket or not name:
            return _gcs_error(h, 400, "InvalidArgument", "Invalid argument.")
        if not self._verify(h, parts.path, query):
            return None
        if h.command == "PUT":
            return self._put(h, bucket, name, body)
        if h.command == "GET":
            return self._get(h, bucket, name)
        return _gcs_error(h, 405, "MethodNotAllowed", "The specified method is not allowed against this resource.")

    def _answer_headers(self, meta: dict) -> dict:
        md5 = base64.b64decode(meta.get("md5Hash", "")).hex()
        return {"ETag": f'"{md5}"', "x-goog-hash": f"crc32c={meta.get('crc32c', '')},md5={meta.get('md5Hash', '')}",
                "x-goog-generation": str(meta.get("generation", "")), "x-goog-stored-content-length":
                str(meta.get("size", ""))}

    def _put(self, h, bucket: str, name: str, body: bytes) -> None:
        sent_md5 = h.headers.get("Content-MD5")
        if sent_md5 and base64.b64encode(hashlib.md5(body).digest()).decode() != sent_md5:
            return _gcs_error(h, 400, "BadDigest", "The Content-MD5 you specified did not match what was received.")
        status, _, answer = self._upstream(
            "POST", f"/upload/storage/v1/b/{quote(bucket, safe='')}/o?uploadType=media&name={quote(name, safe='')}",
            body, {"Content-Type": h.headers.get("Content-Type") or "application/octet-stream"})
        if status == 404:
            return _gcs_error(h, 404, "NoSuchBucket", "The specified bucket does not exist.")
        if status != 200:
            return _gcs_error(h, 500, "InternalError", "We encountered an internal error. Please try again.")
        _send(h, 200, b"", self._answer_headers(json.loads(answer)))

    def _get(self, h, bucket: str, name: str) -> None:
        status, _, meta = self._upstream("GET", f"/storage/v1/b/{quote(bucket, safe='')}/o/{quote(name, safe='')}")
        if status == 404:
            bucket_status, _, _ = self._upstream("GET", f"/storage/v1/b/{quote(bucket, safe='')}")
            if bucket_status == 404:
                return _gcs_error(h, 404, "NoSuchBucket", "The specified bucket does not exist.")
            return _gcs_error(h, 404, "NoSuchKey", "The specified key does not exist.")
        meta = json.loads(meta)
        headers = {"Range": h.headers["Range"]} if h.headers.get("Range") else {}
        status, upstream_headers, data = self._upstream(
            "GET", f"/storage/v1/b/{quote(bucket, safe='')}/o/{quote(name, safe='')}?alt=media", headers=headers)
        answer = self._answer_headers(meta)
        size = int(meta.get("size") or 0)
        if status == 416:
            answer["Content-Range"] = f"bytes */{size}"
            return _send(h, 416, b"", answer, content_type="application/xml; charset=UTF-8")
        if status == 206:
            answer["Content-Range"] = upstream_headers.get("Content-Range", "")
        _send(h, status, data, answer, content_type=meta.get("contentType") or "application/octet-stream")

    def close(self) -> None:
        self._server.close()
