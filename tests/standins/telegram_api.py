"""A stand-in of the Telegram Bot API over real HTTP on 127.0.0.1, for end-to-end tests.

It speaks the wire format (`POST /bot<token>/<method>` with a JSON, form or query body;
answers `{"ok": true, "result": …}` or `{"ok": false, "error_code", "description",
"parameters": {"retry_after"}}`), keeps one account per token (its webhook, its pending
updates, its command menus) and records every call. Telegram's side of the conversation is
driven from the test: `push()` hands an update to the bot the way Telegram would, POSTed to
the registered webhook with its secret, or queued for `getUpdates` (long poll, confirmed by
`offset`). Faults on demand: `fail()` (a 429 with `retry_after`, or any error), `block()`
(403, the user blocked the bot), refused tokens (401).

Runs in a background thread (`http.server.ThreadingHTTPServer`); one per test module.
"""

from __future__ import annotations

import itertools
import json
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

TOKEN = re.compile(r"\d+:[A-Za-z0-9_-]+")
#: Form fields that stay strings; other form values are JSON-decoded where they parse.
STRING_FIELDS = frozenset({"text", "url", "secret_token", "callback_query_id", "language_code",
                           "parse_mode", "caption", "ip_address"})
UPDATE_TYPES = ("message", "edited_message", "channel_post", "edited_channel_post",
                "callback_query", "inline_query", "my_chat_member", "chat_member")


class ApiError(Exception):
    def __init__(self, status: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.status, self.description, self.retry_after = status, description, retry_after


@dataclass(frozen=True)
class Call:
    """One request the bot made: method, decoded parameters, our HTTP status, when."""

    token: str
    method: str
    params: dict[str, Any]
    status: int
    at: float

    @property
    def ok(self) -> bool:
        return self.status == 200

    @property
    def chat_id(self) -> int | None:
        value = self.params.get("chat_id")
        return int(value) if value is not None else None

    @property
    def text(self) -> str:
        return str(self.params.get("text", ""))

    @property
    def buttons(self) -> list[tuple[str, str]]:
        """(label, callback_data) of an inline keyboard, row by row."""
        markup = self.params.get("reply_markup") or {}
        return [(b["text"], b.get("callback_data", "")) for row in
                markup.get("inline_keyboard", []) for b in row]


@dataclass(frozen=True)
class Fault:
    method: str
    status: int
    description: str
    retry_after: int | None
    chat_id: int | None
    times: list[int]  # remaining, shared so a fault can count down


@dataclass
class Account:
    """What Telegram keeps for one bot token."""

    token: str
    webhook_url: str = ""
    secret: str | None = None
    allowed_updates: list[str] | None = None
    pending: list[dict[str, Any]] = field(default_factory=list)
    commands: dict[str | None, list[dict[str, str]]] = field(default_factory=dict)
    blocked: set[int] = field(default_factory=set)
    answered: set[str] = field(default_factory=set)
    poll_generation: int = 0
    #: getUpdates calls as they arrive (a long poll is in `calls` only once it answers)
    polls: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    next_update_id: int = 100_000_001
    message_ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def bot_id(self) -> int:
        return int(self.token.split(":")[0])


class TelegramAPI:
    """The stand-in server. `url` goes into TELEGRAM_API_URL."""

    def __init__(self, refused_tokens: tuple[str, ...] = ()) -> None:
        self.refused = set(refused_tokens)
        self.accounts: dict[str, Account] = {}
        self.log: list[Call] = []
        self.faults: list[Fault] = []
        self.cond = threading.Condition()
        self.closed = False
        self.http = httpx.Client(timeout=10)
        handler = type("Handler", (_Handler,), {"api": self})
        self.server = _Server(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="telegram-api",
                                       daemon=True)

    def __enter__(self) -> TelegramAPI:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()
        self.server.shutdown()
        self.server.server_close()
        self.http.close()

    # --- Telegram's side, driven by the test ---------------------------------------------

    def account(self, token: str) -> Account:
        with self.cond:
            return self.accounts.setdefault(token, Account(token))

    def push(self, token: str, update: dict[str, Any]) -> int | None:
        """Give the bot an update as Telegram would; an `update_id` is added when missing.

        With a webhook set: POSTed there with the secret, returning the HTTP status (Telegram
        would retry a non-2xx). Without: queued for getUpdates, returning None.
        """
        account = self.account(token)
        with self.cond:
            update = {"update_id": account.next_update_id, **update}
            if isinstance(update["update_id"], int):  # ids only grow, as Telegram's do
                account.next_update_id = max(account.next_update_id, update["update_id"] + 1)
            url, secret = account.webhook_url, account.secret
            if not url:
                account.pending.append(update)
                self.cond.notify_all()
                return None
        headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret else {}
        return self.http.post(url, json=update, headers=headers).status_code

    def fail(self, token: str, method: str, *, status: int = 429, retry_after: int | None = 1,
             times: int = 1, chat_id: int | None = None, description: str | None = None) -> None:
        """The next `times` calls of `method` (to `chat_id`, if given) fail with `status`."""
        text = description or (f"Too Many Requests: retry after {retry_after or 0}"
                               if status == 429 else "Internal Server Error")
        with self.cond:
            self.faults.append(Fault(method, status, text, retry_after if status == 429 else None,
                                     chat_id, [times]))
            self.faults = [f for f in self.faults if f.times[0] > 0]
        self.account(token)

    def block(self, token: str, chat_id: int) -> None:
        """The user blocked the bot: sendMessage to them answers 403."""
        self.account(token).blocked.add(chat_id)

    # --- reading what the bot did --------------------------------------------------------

    def calls(self, token: str, method: str | None = None, chat_id: int | None = None,
              ok: bool | None = None) -> list[Call]:
        with self.cond:
            return [c for c in self.log if c.token == token
                    and (method is None or c.method == method)
                    and (chat_id is None or c.chat_id == chat_id)
                    and (ok is None or c.ok == ok)]

    def sent(self, token: str, chat_id: int) -> list[Call]:
        """The messages delivered to a chat, in order."""
        return self.calls(token, "sendMessage", chat_id, ok=True)

    def wait_for(self, check: Callable[[], Any], timeout: float = 10.0) -> Any:
        """Wait until `check()` is truthy (re-checked on every call the bot makes)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                value = check()
                if value:
                    return value
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("the bot did not make the expected calls in time")
                self.cond.wait(remaining)

    # --- the Bot API ---------------------------------------------------------------------

    def handle(self, token: str, method: str, params: dict[str, Any]) -> Any:
        """Called by the request handler with `cond` held, except while a long poll waits."""
        account = self.accounts.setdefault(token, Account(token))
        for fault in self.faults:
            if fault.method == method and fault.times[0] > 0 and (
                    fault.chat_id is None or str(fault.chat_id) == str(params.get("chat_id"))):
                fault.times[0] -= 1
                raise ApiError(fault.status, fault.description, fault.retry_after)
        action = getattr(self, f"api_{method}", None)
        if action is None:
            raise ApiError(404, "Not Found")
        return action(account, params)

    def api_getMe(self, account: Account, params: dict[str, Any]) -> Any:
        return {"id": account.bot_id, "is_bot": True, "first_name": "Petition",
                "username": f"petition{account.bot_id}_bot", "can_join_groups": True,
                "can_read_all_group_messages": False, "supports_inline_queries": False}

    def api_setWebhook(self, account: Account, params: dict[str, Any]) -> Any:
        url = params.get("url")
        if not isinstance(url, str):
            raise ApiError(400, "Bad Request: bad webhook: URL must be provided")
        account.webhook_url, account.secret = url, params.get("secret_token")
        account.allowed_updates = params.get("allowed_updates")
        if params.get("drop_pending_updates"):
            account.pending.clear()
        return True

    def api_deleteWebhook(self, account: Account, params: dict[str, Any]) -> Any:
        account.webhook_url, account.secret = "", None
        if params.get("drop_pending_updates"):
            account.pending.clear()
        return True

    def api_getWebhookInfo(self, account: Account, params: dict[str, Any]) -> Any:
        return {"url": account.webhook_url, "has_custom_certificate": False,
                "pending_update_count": len(account.pending),
                "allowed_updates": account.allowed_updates or []}

    def api_setMyCommands(self, account: Account, params: dict[str, Any]) -> Any:
        commands = params.get("commands")
        if not isinstance(commands, list) or not all(
                isinstance(c, dict) and 1 <= len(c.get("description", "")) <= 256
                and re.fullmatch(r"[a-z0-9_]{1,32}", c.get("command", "")) for c in commands):
            raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
        account.commands[params.get("language_code") or None] = commands
        return True

    def api_getUpdates(self, account: Account, params: dict[str, Any]) -> Any:
        if account.webhook_url:
            raise ApiError(409, "Conflict: can't use getUpdates method while webhook is active; "
                                "use deleteWebhook to delete the webhook first")
        account.polls.append((time.monotonic(), params))
        offset = int(params.get("offset") or 0)
        if offset:
            account.pending = [u for u in account.pending if u["update_id"] >= offset]
        if params.get("allowed_updates") is not None:
            account.allowed_updates = params["allowed_updates"]
        allowed = set(account.allowed_updates or UPDATE_TYPES)
        # Telegram never creates updates of types the bot did not ask for.
        account.pending = [u for u in account.pending if any(k in allowed for k in u)]
        account.poll_generation += 1
        generation = account.poll_generation
        self.cond.notify_all()  # an older long poll of this token ends with 409
        deadline = time.monotonic() + float(params.get("timeout") or 0)
        while not account.pending and not self.closed:
            if account.poll_generation != generation:
                raise ApiError(409, "Conflict: terminated by other getUpdates request; make sure "
                                    "that only one bot instance is running")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self.cond.wait(remaining)
        limit = int(params.get("limit") or 100)
        return account.pending[:limit]

    def api_sendMessage(self, account: Account, params: dict[str, Any]) -> Any:
        chat_id, text = params.get("chat_id"), params.get("text")
        if chat_id is None:
            raise ApiError(400, "Bad Request: chat_id is empty")
        if not isinstance(text, str) or not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if len(text) > 4096:
            raise ApiError(400, "Bad Request: message is too long")
        if int(chat_id) in account.blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        check_markup(params.get("reply_markup"))
        return self._message(account, int(chat_id), text, params.get("reply_markup"))

    def api_sendPhoto(self, account: Account, params: dict[str, Any]) -> Any:
        return self._upload(account, params, "photo")

    def api_sendDocument(self, account: Account, params: dict[str, Any]) -> Any:
        return self._upload(account, params, "document")

    def _upload(self, account: Account, params: dict[str, Any], field: str) -> Any:
        upload = params.get(field)
        if params.get("chat_id") is None or not isinstance(upload, dict) or \
                not upload.get("content"):
            raise ApiError(400, f"Bad Request: there is no {field} in the request")
        message = self._message(account, int(params["chat_id"]), "", None)
        message.pop("text")
        message[field] = {"file_id": f"file-{message['message_id']}",
                          "file_name": upload["filename"], "file_size": len(upload["content"])}
        return message

    def api_editMessageText(self, account: Account, params: dict[str, Any]) -> Any:
        if params.get("chat_id") is None or params.get("message_id") is None:
            raise ApiError(400, "Bad Request: message to edit not found")
        check_markup(params.get("reply_markup"))
        return self._message(account, int(params["chat_id"]), str(params.get("text", "")),
                             params.get("reply_markup"), int(params["message_id"]))

    def api_answerCallbackQuery(self, account: Account, params: dict[str, Any]) -> Any:
        query_id = params.get("callback_query_id")
        if not query_id or query_id in account.answered:
            raise ApiError(400, "Bad Request: query is too old and response timeout expired or "
                                "query ID is invalid")
        account.answered.add(str(query_id))
        return True

    def _message(self, account: Account, chat_id: int, text: str, markup: Any,
                 message_id: int | None = None) -> dict[str, Any]:
        message = {
            "message_id": message_id or next(account.message_ids),
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private", "first_name": "Member"},
            "from": {"id": account.bot_id, "is_bot": True, "first_name": "Petition"},
            "text": text,
        }
        if markup:
            message["reply_markup"] = markup
        return message


def check_markup(markup: Any) -> None:
    if markup is None:
        return
    rows = markup.get("inline_keyboard") if isinstance(markup, dict) else None
    if not isinstance(rows, list):
        raise ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
    for row in rows:
        for button in row:
            data = button.get("callback_data", "")
            if not button.get("text") or not 1 <= len(data.encode("utf-8")) <= 64:
                raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")


def decode_params(content_type: str, body: bytes, query: str) -> dict[str, Any]:
    """Parameters as Telegram reads them: query string, then a JSON or form body."""
    raw: dict[str, Any] = dict(parse_qsl(query, keep_blank_values=True))
    kind = content_type.split(";")[0].strip().lower()
    if kind == "application/json":
        data = json.loads(body or b"{}")
        if not isinstance(data, dict):
            raise ApiError(400, "Bad Request: parameters must be a JSON object")
        return {**_decoded(raw), **data}
    if kind in ("application/x-www-form-urlencoded", "") and body:
        raw.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    elif kind == "multipart/form-data" and body:
        # Uploads (sendPhoto, sendDocument): files arrive as bytes with their filename.
        from email.parser import BytesParser
        from email.policy import HTTP

        head = f"Content-Type: {content_type}\r\n\r\n".encode()
        for part in BytesParser(policy=HTTP).parsebytes(head + body).iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True) or b""
            if part.get_filename():
                raw[str(name)] = {"filename": part.get_filename(), "content": payload}
            else:
                raw[str(name)] = payload.decode("utf-8")
    elif body:
        raise ApiError(400, f"Bad Request: unsupported content type {kind!r}")
    return _decoded(raw)


def _decoded(raw: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key in STRING_FIELDS or not isinstance(value, str):
            out[key] = value
            continue
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # a broadcast opens many connections at once
    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a bot killed mid-request
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    api: TelegramAPI
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        return

    def do_GET(self) -> None:
        self.do_POST()

    def do_POST(self) -> None:
        api = self.api
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        match = re.fullmatch(r"/bot([^/]+)/(\w+)", parts.path)
        token, method = (match.group(1), match.group(2)) if match else ("", "")
        params: dict[str, Any] = {}
        try:
            if not match or not TOKEN.fullmatch(token):
                raise ApiError(404, "Not Found")
            if token in api.refused:
                raise ApiError(401, "Unauthorized")
            params = decode_params(self.headers.get("Content-Type", ""), body, parts.query)
            with api.cond:
                result = api.handle(token, method, params)
            status, answer = 200, {"ok": True, "result": result}
        except ApiError as exc:
            status = exc.status
            answer = {"ok": False, "error_code": exc.status, "description": exc.description}
            if exc.retry_after is not None:
                answer["parameters"] = {"retry_after": exc.retry_after}
        except (ValueError, UnicodeDecodeError) as exc:
            status = 400
            answer = {"ok": False, "error_code": 400, "description": f"Bad Request: {exc}"}
        if token:
            with api.cond:
                api.log.append(Call(token, method, params, status, time.monotonic()))
                api.cond.notify_all()
        payload = json.dumps(answer).encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except OSError:
            pass  # the bot went away (killed during a long poll)
