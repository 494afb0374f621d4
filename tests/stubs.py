"""Misbehaving HTTP servers on loopback, for the cases that are about a server misbehaving: an answer that
never ends, one that drips, redirects, a valid JSON answer of the wrong shape. (Where a real server can
play the part, the tests use it; these play what no real server does on purpose.)

``Stub(handler)`` serves every request with ``handler(method, path, headers, body, sock)``, which writes
the raw answer to ``sock`` itself. Every request seen is kept in ``requests``.
"""

from __future__ import annotations

import json
import socket
import threading
import time


class Stub:
    def __init__(self, handler):
        self.handler = handler
        self.requests: list[dict] = []
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(32)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.closed = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while not self.closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn):
        try:
            reader = conn.makefile("rb")
            while True:
                line = reader.readline()
                if not line:
                    return
                method, path, _ = line.decode("latin-1").split(" ", 2)
                headers = {}
                while True:
                    h = reader.readline()
                    if h in (b"\r\n", b"\n", b""):
                        break
                    k, _, v = h.decode("latin-1").partition(":")
                    headers[k.strip().lower()] = v.strip()
                body = reader.read(int(headers.get("content-length") or 0))
                self.requests.append({"method": method, "path": path, "headers": headers, "body": body})
                if self.handler(method, path, headers, body, conn) == "close":
                    return
        except OSError:
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def close(self):
        self.closed = True
        self.sock.close()


def answer(conn, status: int, body: bytes | dict | list = b"", headers: dict | None = None) -> None:
    if not isinstance(body, bytes):
        body = json.dumps(body).encode()
    head = f"HTTP/1.1 {status} X\r\ncontent-length: {len(body)}\r\ncontent-type: application/json\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    conn.sendall(head.encode() + b"\r\n" + body)


def endless_chunks(conn) -> str:
    """200, chunked, and chunks forever (until the client goes away)."""
    conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n")
    chunk = b"x" * 65536
    try:
        while True:
            conn.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    except OSError:
        return "close"


def drip(conn, every: float = 2.0) -> str:
    """A status line, then one byte of header every ``every`` seconds, forever."""
    try:
        conn.sendall(b"HTTP/1.1 200 OK\r\n")
        while True:
            time.sleep(every)
            conn.sendall(b"x")
    except OSError:
        return "close"
