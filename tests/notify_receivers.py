"""Local receivers for notification tests: an HTTP webhook endpoint and an SMTP server (aiosmtpd)."""

from __future__ import annotations

import email
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.stack import free_port


@dataclass
class Webhook:
    """Bodies posted to `url`; the first `failures` posts are answered 503."""

    url: str = ""
    failures: int = 0
    bodies: list[dict] = field(default_factory=list)
    tries: int = 0


@contextmanager
def webhook_receiver(failures: int = 0) -> Iterator[Webhook]:
    hook = Webhook(failures=failures)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with lock:
                hook.tries += 1
                failing = hook.tries <= hook.failures
                if not failing:
                    hook.bodies.append(body)
            self.send_response(503 if failing else 200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    hook.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/bosun"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Mailbox:
    host: str
    port: int
    messages: list[Message] = field(default_factory=list)
    recipients: list[list[str]] = field(default_factory=list)


@contextmanager
def smtp_server() -> Iterator[Mailbox]:
    from aiosmtpd.controller import Controller

    box = Mailbox("127.0.0.1", free_port())

    class Handler:
        async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 (aiosmtpd's name)
            box.messages.append(email.message_from_bytes(envelope.content))
            box.recipients.append(list(envelope.rcpt_tos))
            return "250 OK"

    controller = Controller(Handler(), hostname=box.host, port=box.port)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()
