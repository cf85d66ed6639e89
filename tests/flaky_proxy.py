"""A loopback HTTP proxy in front of a Prefect server that answers 429/503 to chosen requests.

Back-pressure tests point a flow's PREFECT_API_URL at it. Every request is forwarded
to the upstream server unless ``rule(method, path, body)`` returns a status code, which
is answered instead (with ``Retry-After`` when the rule says so). WebSocket upgrades
(Prefect's event stream) are tunnelled untouched. Bounded on every side: it binds
127.0.0.1 only, forwards to a loopback upstream only, and shuts itself down after
``lifetime`` seconds even if a test forgets to.
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable
from urllib.parse import urlsplit

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "upgrade", "proxy-connection"}

# (status, Retry-After seconds or None) to answer instead of forwarding; None forwards.
Rule = Callable[[str, str, bytes], "tuple[int, float | None] | None"]


@dataclass
class Seen:
    method: str
    path: str
    status: int
    rejected: bool
    at: float = field(default_factory=time.monotonic)


class FlakyProxy:
    def __init__(self, upstream_api_url: str, rule: Rule, lifetime: float = 600.0) -> None:
        up = urlsplit(upstream_api_url)
        if up.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"the proxy only fronts a loopback server, not {up.hostname}")
        self.upstream = (up.hostname, up.port or 80)
        self.api_path = up.path.rstrip("/")
        self.rule = rule
        self.lifetime = lifetime
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs=dict(poll_interval=0.2), daemon=True)
        self._timer = threading.Timer(lifetime, self.stop)
        self._timer.daemon = True

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}{self.api_path}"

    def __enter__(self) -> FlakyProxy:
        self._thread.start()
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._timer.cancel()
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()

    def record(self, seen: Seen) -> None:
        with self._lock:
            self.seen.append(seen)

    def rejected(self) -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if s.rejected]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # quiet
                pass

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            self.rfile.readline()
                            return b"".join(chunks)
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _tunnel(self) -> None:
                """A WebSocket upgrade: replay the request head upstream, then pipe bytes both ways."""
                upstream = socket.create_connection(proxy.upstream, timeout=30)
                head = [self.requestline] + [f"{k}: {v}" for k, v in self.headers.items()]
                upstream.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
                client = self.connection
                upstream.settimeout(None)
                client.settimeout(None)

                def pipe(src: socket.socket, dst: socket.socket) -> None:
                    try:
                        while data := src.recv(65536):
                            dst.sendall(data)
                    except OSError:
                        pass
                    finally:
                        for s in (src, dst):
                            try:
                                s.shutdown(socket.SHUT_RDWR)
                            except OSError:
                                pass

                back = threading.Thread(target=pipe, args=(upstream, client), daemon=True)
                back.start()
                pipe(client, upstream)
                back.join(timeout=5)
                upstream.close()
                self.close_connection = True
                proxy.record(Seen(self.command, self.path, 101, False))

            def _handle(self) -> None:
                if self.headers.get("Upgrade", "").lower() == "websocket":
                    self._tunnel()
                    return
                body = self._body()
                answer = proxy.rule(self.command, self.path, body)
                if answer is not None:
                    status, retry_after = answer
                    payload = b'{"detail": "busy (test proxy)"}'
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    if retry_after is not None:
                        self.send_header("Retry-After", f"{retry_after:g}")
                    self.end_headers()
                    self.wfile.write(payload)
                    proxy.record(Seen(self.command, self.path, status, True))
                    return
                conn = http.client.HTTPConnection(*proxy.upstream, timeout=120)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                    conn.request(self.command, self.path, body=body or None, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                    self.send_response(resp.status, resp.reason)
                    for k, v in resp.getheaders():
                        if k.lower() not in HOP_BY_HOP:
                            self.send_header(k, v)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(data)
                    proxy.record(Seen(self.command, self.path, resp.status, False))
                finally:
                    conn.close()

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle

        return Handler


def first_attempts(method: str, path_end: str, times: int, status: int = 429, retry_after: float | None = 1.0) -> Rule:
    """Answer ``status`` to the first ``times`` requests ``method ...path_end``; forward the rest."""
    count = 0
    lock = threading.Lock()

    def rule(m: str, path: str, body: bytes) -> tuple[int, float | None] | None:
        nonlocal count
        if m != method or not path.split("?")[0].endswith(path_end):
            return None
        with lock:
            if count >= times:
                return None
            count += 1
        return status, retry_after

    return rule


def every_nth(n: int, limit: int, status: int = 503, match: Callable[[str, str], bool] = lambda m, p: True) -> Rule:
    """Answer ``status`` (no Retry-After: the client backs off exponentially) to every
    ``n``-th request that ``match(method, path)`` accepts, at most ``limit`` times."""
    count = rejected = 0
    lock = threading.Lock()

    def rule(m: str, path: str, body: bytes) -> tuple[int, float | None] | None:
        nonlocal count, rejected
        if not match(m, path.split("?")[0]):
            return None
        with lock:
            count += 1
            if rejected >= limit or count % n:
                return None
            rejected += 1
        return status, None

    return rule


def both(*rules: Rule) -> Rule:
    def rule(m: str, path: str, body: bytes) -> tuple[int, float | None] | None:
        for r in rules:
            answer = r(m, path, body)
            if answer is not None:
                return answer
        return None

    return rule
