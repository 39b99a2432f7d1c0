"""The ceiling for inbound SMS: a bare app on the bot's own server stack.

    python -m bench.ceiling --port PORT [--public-url URL] [--loop auto|asyncio|uvloop]

Starlette on uvicorn with the same uvicorn options as `serve` (`bot.server.UVICORN_OPTIONS`):
it reads the form, checks `X-Twilio-Signature` with twilio's RequestValidator against the
same public URL and returns a fixed TwiML answer. No engine, no database: what the server
library, the form parsing and the signature check cost on their own. `--loop auto` is what
uvicorn itself picks (uvloop when installed); `asyncio` is what `serve` runs on while it is
started inside `asyncio.run` (bot/cli.py).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from urllib.parse import parse_qsl

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import uvicorn  # noqa: E402
from starlette.applications import Starlette  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import Response  # noqa: E402
from starlette.routing import Route  # noqa: E402
from twilio.request_validator import RequestValidator  # noqa: E402

from bot.server import UVICORN_OPTIONS  # noqa: E402
from tests.harness import AUTH_TOKEN  # noqa: E402

TWIML = ('<?xml version="1.0" encoding="UTF-8"?><Response><Message>Thanks! Reply 1 to sign.'
         '</Message></Response>')


def create_app(public_url: str) -> Starlette:
    validator = RequestValidator(AUTH_TOKEN)

    async def twilio_sms(request: Request) -> Response:
        body = await request.body()
        form = dict(parse_qsl(body.decode("latin-1"), keep_blank_values=True, encoding="utf-8",
                              errors="replace"))
        url = f"{public_url}{request.url.path}"
        if not validator.validate(url, form, request.headers.get("x-twilio-signature", "")):
            return Response("invalid signature", status_code=403)
        return Response(TWIML, media_type="text/xml")

    async def healthz(request: Request) -> Response:
        return Response('{"status": "ok"}', media_type="application/json")

    return Starlette(routes=[Route("/twilio/sms", twilio_sms, methods=["POST"]),
                             Route("/healthz", healthz, methods=["GET"])])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--public-url", help="the URL signatures are checked against "
                        "(PUBLIC_URL); default http://127.0.0.1:PORT")
    parser.add_argument("--loop", choices=["auto", "asyncio", "uvloop"], default="auto")
    args = parser.parse_args()
    public_url = args.public_url or f"http://127.0.0.1:{args.port}"
    config = uvicorn.Config(create_app(public_url), host="127.0.0.1", port=args.port,
                            loop=args.loop, **UVICORN_OPTIONS)
    server = uvicorn.Server(config)
    if args.loop == "asyncio":
        asyncio.run(server.serve())  # as `serve` runs today: inside asyncio.run
    else:
        server.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
