"""The command line: parse, load settings, run one command, map failures to exit codes.

0 success, 1 the job failed, 2 bad usage or configuration. Errors are one or two lines.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sqlite3
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from bot import logs
from bot.config import ConfigError, Settings, load_settings
from bot.store import StoreError

log = logging.getLogger("bot")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="run_bot.py", description="Union campaign outreach bot (SMS and Telegram)."
    )
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("serve", help="HTTP server, channels and background workers (the default)")
    chat = sub.add_parser("chat", help="talk to the bot in the terminal")
    chat.add_argument("--channel", choices=["sms", "telegram"], default="sms")
    chat.add_argument("--contact", help="contact id: +E.164 for sms, a number for telegram")
    chat.add_argument("--lang", help="language code (Telegram's language_code)")
    broadcast = sub.add_parser("broadcast", help="send an update to supporters")
    broadcast.add_argument("--message-file", type=Path, required=True,
                           help="TOML: one [lang] table with text = \"…\" per language")
    broadcast.add_argument("--segment", help="e.g. 'signed=true and region=ON'")
    broadcast.add_argument("--dry-run", action="store_true", help="show counts and cost only")
    broadcast.add_argument("--yes", action="store_true", help="do not ask to confirm")
    broadcast.add_argument("--price-per-segment", type=float, default=0.0083,
                           help="USD per SMS segment for the estimate (default 0.0083)")
    sync_cmd = sub.add_parser("sync", help="push pending signatures to the central store")
    sync_cmd.add_argument("--once", action="store_true", help="drain once and exit")
    export = sub.add_parser("export", help="write records to stdout")
    export.add_argument("what", choices=["signatures"])
    export.add_argument("--format", choices=["csv", "jsonl"], default="csv")
    stats = sub.add_parser("stats", help="signatures and contacts per day, language, channel")
    stats.add_argument("--json", action="store_true", help="machine-readable output")
    locales = sub.add_parser("locales", help="translation tools")
    locales.add_argument("action", choices=["check"])
    backup = sub.add_parser("backup", help="a consistent copy of the database, safe while serving")
    backup.add_argument("path", type=Path)
    sub.add_parser("console-link", help="a one-time sign-in link to the organizer console")
    return parser


def _contact_address(channel: str, raw: str | None) -> str | None:
    from bot.phones import normalize_number

    if channel == "telegram":
        ident = (raw or "1").removeprefix("telegram:")
        return f"telegram:{ident}" if ident.lstrip("-").isdigit() else None
    return normalize_number(raw or "+15555550100")


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    from bot.app import open_bot

    command = args.command or "serve"
    if command == "serve":
        from bot.server import serve

        return await serve(settings)
    if command == "locales":
        from bot.locales_check import check

        return check(settings)
    async with open_bot(settings) as bot:
        if command == "chat":
            from bot.chat import run_chat

            address = _contact_address(args.channel, args.contact)
            if address is None:
                print(f"error: --contact {args.contact!r} is not a valid {args.channel} contact "
                      "(use +E.164 for sms, a numeric id for telegram)", file=sys.stderr)
                return 2
            from bot.channels.telegram import map_language

            lang = map_language(args.lang, bot.campaign.languages)  # es, es-MX, pt_BR …
            if args.lang and lang is None:
                print(f"error: --lang {args.lang!r} is not one of the campaign's languages: "
                      f"{', '.join(bot.campaign.languages)}", file=sys.stderr)
                return 2
            return await run_chat(bot, args.channel, address, lang)
        if command == "broadcast":
            from bot import broadcast

            return await broadcast.run_command(bot, args)
        if command == "sync":
            from bot import sync

            return await sync.run_command(bot, args)
        if command == "export":
            from bot.reports import export_signatures

            count = await export_signatures(bot.store, bot.campaign.id, sys.stdout, args.format)
            sys.stdout.flush()
            print(f"{count} signatures exported", file=sys.stderr)
            return 0
        if command == "stats":
            from bot.reports import format_stats, stats

            data = await stats(bot.store, bot.campaign.id, bot.campaign.goal)
            print(json.dumps(data, indent=2) if args.json else format_stats(data))
            return 0
        if command == "console-link":
            from bot.console import issue_link

            print(await issue_link(bot))
            return 0
        if command == "backup":
            target = args.path if args.path.is_absolute() else Path.cwd() / args.path
            if target.resolve() == settings.db_path.resolve():
                print("error: the backup path is the database itself; choose another file",
                      file=sys.stderr)
                return 2
            try:
                await bot.store.backup(target)
            except (OSError, sqlite3.Error) as exc:
                print(f"error: cannot write the backup to {target}: {exc}; choose a path in a "
                      "folder you can write to", file=sys.stderr)
                return 1
            print(f"backup written to {target}")
            return 0
    return 2


def _loop_factory(command: str | None) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop for `serve` when installed (uvicorn[standard] brings it): about 5% less CPU per
    request in bench/inbound_sms.py; the standard loop everywhere else."""
    if command not in (None, "serve"):
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    quiet = ("chat", "export", "stats", "console-link")
    logs.setup(settings.log_format, logging.WARNING if args.command in quiet else logging.INFO)
    try:
        with asyncio.Runner(loop_factory=_loop_factory(args.command)) as runner:
            return runner.run(_run(args, settings))
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
