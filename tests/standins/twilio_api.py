"""A local stand-in of Twilio's REST API (create message, create content), over real HTTP
on 127.0.0.1.

It checks basic auth, answers 201 with a message resource like Twilio's, records every
request with its arrival time, and answers on demand with Twilio's errors: a 429, or an
error code for a given recipient (21610 stopped, 21211 invalid, 21614 not mobile …).
`POST /v1/Content` (content.twilio.com's path) makes quick-reply and list-picker content
within WhatsApp's limits, or refuses it on demand; a message naming a ContentSid it never
made is refused with 21655, as Twilio does.
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

ERROR_STATUS = {21655: 400, 21610: 400, 21211: 400, 21614: 400, 30007: 400, 20429: 429}


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

    @property
    def text(self) -> str:
        """What the person reads: the Body, or the content's text variable."""
        if self.content_variables:
            return str(json.loads(self.content_variables).get("1", ""))
        return self.body


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
    contents: dict[str, dict[str, object]] = field(default_factory=dict)  # ContentSid -> body
    content_requests: int = 0
    refuse_content: int = 0  # answer POST /v1/Content with this status (0: make it)
    strict_content: bool = False  # refuse messages naming a ContentSid not made here
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

            def _authorized(self) -> bool:
                auth = self.headers.get("Authorization", "")
                token = base64.b64encode(f"{api.account_sid}:{api.auth_token}".encode()).decode()
                if auth == f"Basic {token}":
                    return True
                self._reply(401, {"code": 20003, "message": "Authenticate", "status": 401})
                return False

            def _content(self, raw: str) -> None:
                if not self._authorized():
                    return
                with api._lock:
                    api.content_requests += 1
                    refuse = api.refuse_content
                if refuse:
                    self._reply(refuse, {"code": 20001, "message": "Content API refused",
                                         "status": refuse})
                    return
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                problem = content_problem(body)
                if problem:
                    self._reply(400, {"code": 20001, "message": problem, "status": 400})
                    return
                with api._lock:
                    sid = f"HX{len(api.contents) + 1:032x}"
                    api.contents[sid] = body
                self._reply(201, {"sid": sid, "account_sid": api.account_sid, **body,
                                  "url": f"https://content.twilio.com/v1/Content/{sid}"})

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode()
                if self.path == "/v1/Content":
                    self._content(raw)
                    return
                form = dict(parse_qsl(raw, keep_blank_values=True))
                expected = f"/2010-04-01/Accounts/{api.account_sid}/Messages.json"
                if self.path != expected:
                    self._reply(404, {"code": 20404, "message": "not found", "status": 404})
                    return
                if not self._authorized():
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
                    content = form.get("ContentSid")
                    if content and api.strict_content and content not in api.contents:
                        code = 21655  # "The ContentSid is Invalid"
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
            self.refuse_content = 0
            self.strict_content = False


def content_problem(body: object) -> str | None:
    """Why Twilio would refuse this content for a WhatsApp session message, or None."""
    if not isinstance(body, dict) or not isinstance(body.get("types"), dict):
        return "types is required"
    if not body.get("friendly_name") or not body.get("language"):
        return "friendly_name and language are required"
    for kind, spec in body["types"].items():
        if not isinstance(spec, dict) or not spec.get("body"):
            return f"{kind}: body is required"
        if kind == "twilio/quick-reply":
            actions = spec.get("actions") or []
            if not 1 <= len(actions) <= 10 or any(len(a.get("title", "")) > 20
                                                  for a in actions):
                return "quick-reply: 1 to 10 actions, titles of at most 20 characters"
        elif kind == "twilio/list-picker":
            items = spec.get("items") or []
            if not 1 <= len(items) <= 10 or any(len(i.get("item", "")) > 24 for i in items) \
                    or not all(0 < len(i.get("description", "")) <= 72 for i in items) \
                    or not 0 < len(spec.get("button", "")) <= 20:
                return ("list-picker: 1 to 10 items of at most 24 characters, each with a "
                        "description of at most 72, and a button")
        elif kind != "twilio/text":
            return f"unknown content type {kind}"
    return None
