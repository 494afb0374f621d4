"""A small signing service for the PRESIGNED provider's tests: real pre-signed URLs for SeaweedFS.

It plays the platform's ``/v1/cloud-services/storage/actions`` endpoint: checks a bearer token,
and for each requested file signs a URL with boto3 against a real S3 server (SeaweedFS). Write
URLs sign the Content-MD5 header, so the store verifies the body.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class SigningService:
    def __init__(self, s3_client, bucket: str, token: str, ttl: int = 900):
        self.client, self.bucket, self.token, self.ttl = s3_client, bucket, token, ttl
        service = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                service._handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _send(self, h, status, doc):
        data = json.dumps(doc).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def _sign(self, op, item):
        params = {"Bucket": self.bucket, "Key": item["file"]}
        method = {"write": "put_object", "read": "get_object", "head": "head_object",
                  "delete": "delete_object"}[op]
        if op == "write":
            params["ContentMD5"] = item["md5"]
        return self.client.generate_presigned_url(method, Params=params, ExpiresIn=self.ttl,
                                                  HttpMethod={"write": "PUT", "read": "GET", "head": "HEAD",
                                                              "delete": "DELETE"}[op])

    def _handle(self, h):
        if h.path != "/v1/cloud-services/storage/actions":
            return self._send(h, 404, {"error": "not found"})
        if h.headers.get("Authorization") != f"Bearer {self.token}":
            return self._send(h, 401, {"error": "unauthorized"})
        req = json.loads(h.rfile.read(int(h.headers.get("Content-Length") or 0)))["request"]
        op = req["op"]
        if op == "list":
            objects = []
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket,
                                                                               Prefix=req.get("prefix", "")):
                objects += [{"key": o["Key"], "size": o["Size"], "etag": o["ETag"].strip('"')}
                            for o in page.get("Contents", [])]
            return self._send(h, 200, {"result": {"objects": objects}})
        files = [{"file": item["file"], "url": self._sign(op, item)} for item in req["files"]]
        self._send(h, 200, {"result": {"files": files}})

    def close(self):
        self.server.shutdown()
        self.server.server_close()
