"""Reading request bodies safely: a size cap enforced while reading, and form decoding."""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.requests import Request


class BodyTooLarge(Exception):
    """The body is over the route's cap (answer 413)."""


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused early past `limit` bytes whatever Content-Length claims."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def parse_form(body: bytes) -> dict[str, str]:
    """Form fields; bytes that are not UTF-8 become U+FFFD (a signature over them then fails)."""
    text = body.decode("latin-1")
    return dict(parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="replace"))


async def read_form(request: Request, limit: int) -> dict[str, str]:
    """A url-encoded form, refused past `limit` bytes (BodyTooLarge)."""
    return parse_form(await read_body(request, limit))
