"""A local stand-in of an OSDI petition (Action Network style), over real HTTP on 127.0.0.1.

It serves one petition: `POST …/petitions/<id>/signatures` records a signature (one per
person: a re-post of the same person answers the signature it already has, as Action
Network's helper does), `PUT …/signatures/<id>` updates one, `GET …/petitions/<id>` has
`total_signatures`. It checks the `OSDI-API-Token` header, records every request with its
arrival time, and misbehaves on demand: the next requests can answer 500, 429 (with
Retry-After), an empty 200, a 4xx validation error, or hang past the client's timeout;
`refuse` rejects matching signatures with a 400 every time, as a validation rule would.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Request:
    at: float
    method: str
    path: str
    headers: dict[str, str]
    body: Any  # parsed JSON, or None


@dataclass
class Misbehave:
    status: int  # 500, 429, 200 (empty body), 4xx; 0: record it, then answer 200 `delay` s late
    body: str = ""
    delay: float = 0.0
    retry_after: str | None = None


@dataclass
class OsdiAPI:
    api_key: str = "osdi-test-key"
    petition: str = "petition-1"
    host: str = "127.0.0.1"
    requests: list[Request] = field(default_factory=list)
    signatures: dict[str, dict[str, Any]] = field(default_factory=dict)  # remote id → signature
    _people: dict[str, str] = field(default_factory=dict)  # person key → remote id
    _script: deque[Misbehave] = field(default_factory=deque)
    _rules: list[tuple[Callable[[dict[str, Any]], bool], int, str]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _send(self, status: int, payload: Any = None,
                      headers: dict[str, str] | None = None) -> None:
                body = b"" if payload is None else (
                    payload.encode() if isinstance(payload, str) else json.dumps(payload).encode())
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/hal+json")
                    self.send_header("Content-Length", str(len(body)))
                    for key, value in (headers or {}).items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout we caused)

            def _handle(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = None
                with api._lock:
                    api.requests.append(Request(time.monotonic(), method, self.path,
                                                {k.lower(): v for k, v in self.headers.items()},
                                                body))
                    trick = api._script.popleft() if api._script else None
                if self.headers.get("OSDI-API-Token") != api.api_key:
                    self._send(401, {"error": "API Key invalid or not present"})
                    return
                if trick is not None and trick.status != 0:
                    headers = {"Retry-After": trick.retry_after} if trick.retry_after else None
                    self._send(trick.status, trick.body or None, headers)
                    return
                # Recorded on arrival: a slow answer (trick status 0) comes after the store
                # has kept the signature, and never lands in a later test after its reset.
                status, payload = api._answer(method, self.path, body)
                if trick is not None:
                    time.sleep(trick.delay)
                self._send(status, payload)

            def do_POST(self) -> None:  # noqa: N802
                self._handle("POST")

            def do_PUT(self) -> None:  # noqa: N802
                self._handle("PUT")

            def do_GET(self) -> None:  # noqa: N802
                self._handle("GET")

        self.server = ThreadingHTTPServer((self.host, 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.base = f"http://{self.host}:{self.port}/api/v2"
        self.url = f"{self.base}/petitions/{self.petition}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # --- control --------------------------------------------------------------------------

    def start(self) -> OsdiAPI:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.signatures.clear()
            self._people.clear()
            self._script.clear()
            self._rules.clear()

    def next(self, *tricks: Misbehave) -> None:
        """Answer the next requests with these, in order, then behave again."""
        with self._lock:
            self._script.extend(tricks)

    def refuse(self, when: Callable[[dict[str, Any]], bool], status: int = 400,
               error: str = "validation failed") -> None:
        """Every signature body for which `when` is true gets `status` with `error`."""
        with self._lock:
            self._rules.append((when, status, error))

    def forgive(self) -> None:
        """Drop every `refuse` rule."""
        with self._lock:
            self._rules.clear()

    def posts(self) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.method == "POST"]

    def puts(self) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.method == "PUT"]

    # --- the petition -----------------------------------------------------------------------

    def _answer(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        prefix = f"/api/v2/petitions/{self.petition}"
        if method == "GET" and path.rstrip("/") == prefix:
            with self._lock:
                return 200, {"identifiers": [f"action_network:{self.petition}"],
                             "total_signatures": len(self.signatures)}
        if not path.startswith(prefix + "/signatures"):
            return 404, {"error": "not found"}
        if not isinstance(body, dict) or not isinstance(body.get("person"), dict):
            return 400, {"error": "a signature needs a person"}
        with self._lock:
            for when, status, error in self._rules:
                if when(body):
                    return status, {"error": error}
            if method == "POST" and path.rstrip("/") == prefix + "/signatures":
                person = body["person"]
                key = json.dumps([person.get("custom_fields", {}).get("signature_id"),
                                  person.get("given_name")])
                remote = self._people.get(key)
                if remote is None:
                    remote = str(uuid.uuid4())
                    self._people[key] = remote
                    self.signatures[remote] = body
                return 200, self._resource(remote)
            if method == "PUT":
                remote = path.rstrip("/").rsplit("/", 1)[-1]
                if remote not in self.signatures:
                    return 404, {"error": "signature not found"}
                self.signatures[remote] = body
                return 200, self._resource(remote)
        return 405, {"error": "method not allowed"}

    def _resource(self, remote: str) -> dict[str, Any]:
        return {
            "identifiers": [f"action_network:{remote}"],
            "created_date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "_links": {
                "self": {"href": f"{self.url}/signatures/{remote}"},
                "osdi:petition": {"href": self.url},
            },
        }
