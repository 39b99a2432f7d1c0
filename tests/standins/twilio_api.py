"""A local stand-in of Twilio's REST API (create message), over real HTTP on 127.0.0.1.

It checks basic auth, answers 201 with a message resource like Twilio's, records every
request with its arrival time, and answers on demand with Twilio's errors: a 429, or an
error code for a given recipient (21610 stopped, 21211 invalid, 21614 not mobile …).
"""

from __future__ import annotations

import base64
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

ERROR_STATUS = {21610: 400, 21211: 400, 21614: 400, 30007: 400, 20429: 429}


@dataclass
class Sent:
    at: float
    to: str
    body: str
    sender: str | None
    service: str | None
    callback: str | None
    sid: str
    content_sid: str | None = None
    content_variables: str | None = None


@dataclass
class TwilioAPI:
    account_sid: str
    auth_token: str
    host: str = "127.0.0.1"
    sent: list[Sent] = field(default_factory=list)
    requests: int = 0
    errors_for: dict[str, int] = field(default_factory=dict)  # To -> Twilio error code
    rate_limit_next: int = 0  # answer this many next requests with 429
    delay: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        api = self
        counter = itertools.count(1)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _reply(self, status: int, payload: dict[str, object],
                       headers: dict[str, str] | None = None) -> None:
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode()
                form = dict(parse_qsl(raw, keep_blank_values=True))
                expected = f"/2010-04-01/Accounts/{api.account_sid}/Messages.json"
                if self.path != expected:
                    self._reply(404, {"code": 20404, "message": "not found", "status": 404})
                    return
                auth = self.headers.get("Authorization", "")
                token = base64.b64encode(f"{api.account_sid}:{api.auth_token}".encode()).decode()
                if auth != f"Basic {token}":
                    self._reply(401, {"code": 20003, "message": "Authenticate", "status": 401})
                    return
                if api.delay:
                    time.sleep(api.delay)
                with api._lock:
                    api.requests += 1
                    if api.rate_limit_next > 0:
                        api.rate_limit_next -= 1
                        self._reply(429, {"code": 20429, "message": "Too Many Requests",
                                          "status": 429}, {"Retry-After": "1"})
                        return
                    code = api.errors_for.get(form.get("To", ""))
                    if code:
                        status = ERROR_STATUS.get(code, 400)
                        self._reply(status, {"code": code, "message": f"error {code}",
                                             "status": status})
                        return
                    sid = f"SM{next(counter):032x}"
                    api.sent.append(Sent(time.time(), form.get("To", ""), form.get("Body", ""),
                                         form.get("From"), form.get("MessagingServiceSid"),
                                         form.get("StatusCallback"), sid,
                                         form.get("ContentSid"), form.get("ContentVariables")))
                self._reply(201, {"sid": sid, "status": "queued", "to": form.get("To"),
                                  "body": form.get("Body"), "num_segments": "1",
                                  "account_sid": api.account_sid})

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: object, client_address: object) -> None:
                pass  # a client killed mid-request (the crash tests) is not our error

        self.server = Server((self.host, 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://{self.host}:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> TwilioAPI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def to(self, number: str) -> list[Sent]:
        with self._lock:
            return [s for s in self.sent if s.to == number]

    def reset(self) -> None:
        with self._lock:
            self.sent.clear()
            self.errors_for.clear()
            self.rate_limit_next = 0
            self.requests = 0
