"""An HTTP/1.1 proxy on loopback that can record, corrupt or fail requests on their way to a real server.

Tests put it between a client and SeaweedFS / Azurite / fake-gcs-server to see the headers a
client really sent, and to inject faults. It parses every request and response (Content-Length
or chunked bodies) so keep-alive connections work, and for each request asks a ``rule``
what to do:

* ``None`` / ``"pass"``: forward unchanged.
* ``("corrupt",)``: flip one byte of the request body before forwarding.
* ``("status", code, body)``: answer ``code`` without contacting the server.
* ``("after", code, body)``: forward, let the server act, then answer ``code`` instead (the
  response is lost after the store acted).
* ``("reset",)``: close the connection before forwarding; ``("reset-mid",)``: forward half the
  body then close; ``("drop-response",)``: forward all of it, let the server act, then close
  without answering; ``("stall", seconds)``: wait, then forward.
* ``("respond-header", name, fn)``: forward, and add ``name: fn(body)`` to the server's answer, as a
  store that reports its own checksum of what it received would; ``("corrupt-respond-header", name,
  fn)``: the same after flipping a byte of the body (the "store" reports the checksum of what arrived).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Request:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    index: int = 0

    @property
    def head(self) -> str:
        return f"{self.method} {self.target}\n" + "\n".join(f"{k}: {v}" for k, v in self.headers.items())


Rule = Callable[[Request], object]


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if headers.get("transfer-encoding", "").lower() == "chunked":
        out = bytearray()
        while True:
            size_line = await reader.readline()
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while (await reader.readline()) not in (b"\r\n", b""):
                    pass
                return bytes(out)
            out += await reader.readexactly(size)
            await reader.readexactly(2)
    length = int(headers.get("content-length", "0") or 0)
    return await reader.readexactly(length) if length else b""


async def _read_head(reader: asyncio.StreamReader) -> tuple[str, dict[str, str]] | None:
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    lines = raw.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    return lines[0], headers


def _encode_request(req: Request, body: bytes) -> bytes:
    headers = {k: v for k, v in req.headers.items() if k not in ("transfer-encoding", "content-length")}
    headers["content-length"] = str(len(body))
    head = f"{req.method} {req.target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return head.encode("latin-1") + b"\r\n" + body


def _encode_response(status: int, body: bytes, content_type: str = "application/xml") -> bytes:
    return (f"HTTP/1.1 {status} Injected\r\ncontent-type: {content_type}\r\ncontent-length: {len(body)}\r\n"
            f"x-ms-error-code: ServerBusy\r\n\r\n").encode() + body


class FaultProxy:
    def __init__(self, upstream_port: int, rule: Rule | None = None, upstream_host: str = "127.0.0.1"):
        self.upstream = (upstream_host, upstream_port)
        self.rule = rule
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._server = None
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self._thread.start()
        ready.wait(10)

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        ready.set()
        self._loop.run_forever()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader = up_writer = None
        try:
            while True:
                head = await _read_head(reader)
                if head is None:
                    return
                request_line, headers = head
                method, target, _ = request_line.split(" ", 2)
                if headers.get("expect", "").lower() == "100-continue":
                    writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                    await writer.drain()
                    headers.pop("expect")
                body = await _read_body(reader, headers)
                with self._lock:
                    req = Request(method, target, headers, body, len(self.requests))
                    self.requests.append(req)
                action = self.rule(req) if self.rule else None
                action = action if isinstance(action, tuple) else (action or "pass",)
                kind = action[0]
                if kind == "status":
                    writer.write(_encode_response(action[1], action[2] if len(action) > 2 else b""))
                    await writer.drain()
                    continue
                if kind == "reset":
                    return
                if kind == "stall":
                    await asyncio.sleep(action[1])
                if kind in ("corrupt", "corrupt-respond-header") and body:
                    body = bytes([body[0] ^ 0x01]) + body[1:]
                if up_writer is None:
                    up_reader, up_writer = await asyncio.open_connection(*self.upstream)
                data = _encode_request(req, body)
                if kind == "reset-mid":
                    up_writer.write(data[: len(data) - max(1, len(body) // 2)])
                    await up_writer.drain()
                    return
                up_writer.write(data)
                await up_writer.drain()
                resp_head = await _read_head(up_reader)
                if resp_head is None:
                    return
                status_line, resp_headers = resp_head
                resp_body = b"" if method == "HEAD" else await _read_body(up_reader, resp_headers)
                if kind == "drop-response":
                    return
                if kind == "after":
                    writer.write(_encode_response(action[1], action[2] if len(action) > 2 else b""))
                else:
                    out = {k: v for k, v in resp_headers.items() if k != "transfer-encoding"}
                    if kind.endswith("respond-header"):
                        out[action[1]] = action[2](body)
                    if method != "HEAD":
                        out["content-length"] = str(len(resp_body))
                    writer.write((status_line + "\r\n" + "".join(f"{k}: {v}\r\n" for k, v in out.items())
                                  + "\r\n").encode("latin-1") + resp_body)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            for w in (writer, up_writer):
                if w is not None:
                    try:
                        w.close()
                    except RuntimeError:
                        pass

    def close(self) -> None:
        async def _stop():
            self._server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(_stop(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
