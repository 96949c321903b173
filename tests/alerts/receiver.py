"""A real webhook receiver on 127.0.0.1 that verifies Standard Webhooks signatures.

``script(n, webhook_id)`` decides the answer to the n-th request (all requests, 0-based) as
``(status, headers)``; every request is recorded with whether its signature verified.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

Script = Callable[[int, str], tuple[int, dict[str, str]]]


@dataclass
class Hit:
    webhook_id: str
    path: str
    body: Any
    verified: bool
    answered: int
    headers: dict[str, str]
    whole: bool = True  # the body arrived whole (a sender killed mid-request cuts it short)


@dataclass
class Receiver:
    url: str
    hits: list[Hit] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)  # verify against any of these
    script: Script = lambda n, wid: (200, {})
    lock: threading.Lock = field(default_factory=threading.Lock)

    def delivered(self) -> list[Hit]:
        return [h for h in self.hits if 200 <= h.answered < 300]


def _ok(n: int, wid: str) -> tuple[int, dict[str, str]]:
    return 200, {}


@contextmanager
def receiver(script: Script = _ok, secrets: list[str] | None = None) -> Iterator[Receiver]:
    state = Receiver(url="", secrets=list(secrets or []), script=script)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:  # keep test output quiet
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            raw = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            verified = False
            for secret in state.secrets:
                try:
                    Webhook(secret).verify(raw, headers)
                    verified = True
                    break
                except WebhookVerificationError:
                    continue
            with state.lock:
                n = len(state.hits)
                status, extra = state.script(n, headers.get("webhook-id", ""))
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = raw.decode(errors="replace")
                state.hits.append(
                    Hit(
                        headers.get("webhook-id", ""),
                        self.path,
                        body,
                        verified,
                        status,
                        headers,
                        whole=len(raw) == length,
                    )
                )
            self.send_response(status)
            for k, v in extra.items():
                self.send_header(k, v)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    # shutdown() waits for the loop to look at its flag, every poll_interval (0.5 s by default:
    # a quarter second idle per receiver on average)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
