"""The console's routes: sign-in, dashboard, broadcasts, simulator, export.

Every route under /console/ but the sign-in goes through `guard`: no valid session, a 303 to
/console/login; a POST without this session's CSRF token, a 403. Pages are rendered on the
server (pages.py); console.js only makes them livelier (live counts, polling, a chat that
does not reload).
"""

from __future__ import annotations

import io
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from bot import broadcast
from bot.app import Bot
from bot.console import auth, sandbox
from bot.console.fmt import Fmt, channel_name, language_label, province_name
from bot.console.pages import (
    badge,
    csrf_field,
    day_chart,
    e,
    frame,
    notice,
    on_off,
    public_page,
    share_bar,
    table,
)
from bot.http import BodyTooLarge, read_form
from bot.i18n import PLACEHOLDER
from bot.reports import EXPORT_COLUMNS, broadcast_history, export_signatures, stats
from bot.sms_text import GSM7_SINGLE, UCS2_SINGLE, cost
from flows.types import Choice, Reply

log = logging.getLogger(__name__)

LOGIN = "/console/login"
STATIC = Path(__file__).parent / "static"
MEDIA = {"console.css": "text/css; charset=utf-8", "console.js": "text/javascript; charset=utf-8"}
#: The stylesheet and the script, read once (they ship with the package).
ASSETS = {name: (STATIC / name).read_bytes() for name in MEDIA}
MAX_FORM = 256 * 1024  # ten texts of 1,600 characters fit many times over
MAX_TEXT = 1600  # Twilio's limit for one message
CHART_DAYS = 30
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
SECTIONS = {"dashboard": "/console/", "broadcasts": "/console/broadcasts",
            "simulator": "/console/simulator", "export": "/console/export"}


def harden(response: Response, csp: str = CSP) -> Response:
    response.headers.setdefault("Content-Security-Policy", csp)
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    return response


@dataclass
class Ctx:
    """One signed-in request: the bot, its session, the form (POST), formats for its language."""

    bot: Bot
    health: dict[str, Any]
    session: auth.Session
    form: dict[str, str]
    request: Request

    @property
    def fmt(self) -> Fmt:
        return Fmt(self.session.lang, self.bot.campaign.timezone)

    @property
    def wants_json(self) -> bool:
        return "application/json" in self.request.headers.get("accept", "")

    def language_name(self, code: str) -> str:
        return language_label(code, self.bot.catalogs.language_name(code))

    def page(self, title: str, body: str, current: str, status: int = 200) -> Response:
        campaign = self.bot.campaign
        back = self.request.url.path if self.request.method == "GET" else SECTIONS[current]
        languages = [(c, self.bot.catalogs.language_name(c)) for c in campaign.languages]
        footer = (f"Campaign <code>{e(campaign.id)}</code> · times in "
                  f"{e(campaign.timezone)} · numbers and dates in "
                  f"{e(self.bot.catalogs.language_name(self.session.lang))}")
        html = frame(title=title, body=body, fmt=self.fmt, org=campaign.organization,
                     current=current, csrf=self.session.csrf, languages=languages, back=back,
                     footer=footer)
        return HTMLResponse(html, status_code=status)


Handler = Callable[[Ctx], Awaitable[Response]]


def build_routes(bot: Bot, health: dict[str, Any]) -> list[Route]:
    def guard(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            session = await auth.load_session(bot, request.cookies.get(auth.COOKIE))
            if session is None:
                return harden(RedirectResponse(LOGIN, status_code=303))
            form: dict[str, str] = {}
            if request.method == "POST":
                try:
                    form = await read_form(request, MAX_FORM)
                except BodyTooLarge:
                    return harden(Response("form too large", status_code=413))
                except ClientDisconnect:
                    return Response(status_code=400)
                sent = form.get("csrf") or request.headers.get("x-csrf-token")
                if not auth.csrf_ok(session, sent):
                    log.warning("console: refused a POST to %s without a valid CSRF token",
                                request.url.path)
                    ctx = Ctx(bot, health, session, {}, request)
                    return harden(forbidden(ctx))
            return harden(await handler(Ctx(bot, health, session, form, request)))

        return endpoint

    async def login_get(request: Request) -> Response:
        return await login_page(bot, request)

    async def login_post(request: Request) -> Response:
        return await login_submit(bot, request)

    async def static(request: Request) -> Response:
        session = await auth.load_session(bot, request.cookies.get(auth.COOKIE))
        if session is None:
            return harden(RedirectResponse(LOGIN, status_code=303))
        name = request.path_params["name"]
        if name not in ASSETS:
            return harden(Response("not found", status_code=404))
        response = Response(ASSETS[name], media_type=MEDIA[name],
                            headers={"Cache-Control": "private, max-age=86400"})
        return harden(response)

    return [
        Route(LOGIN, login_get, methods=["GET"]),
        Route(LOGIN, login_post, methods=["POST"]),
        Route("/console/logout", guard(logout), methods=["POST"]),
        Route("/console", guard(dashboard), methods=["GET"]),
        Route("/console/", guard(dashboard), methods=["GET"]),
        Route("/console/language", guard(set_language), methods=["POST"]),
        Route("/console/broadcasts", guard(broadcasts_page), methods=["GET"]),
        Route("/console/broadcasts/cost", guard(broadcast_cost), methods=["GET"]),
        Route("/console/broadcasts/preview", guard(broadcast_preview), methods=["POST"]),
        Route("/console/broadcasts/edit", guard(broadcast_edit), methods=["POST"]),
        Route("/console/broadcasts/send", guard(broadcast_send), methods=["POST"]),
        Route("/console/broadcasts/{bid:int}", guard(broadcast_page), methods=["GET"]),
        Route("/console/broadcasts/{bid:int}/status", guard(broadcast_status), methods=["GET"]),
        Route("/console/simulator", guard(simulator_page), methods=["GET"]),
        Route("/console/simulator/send", guard(simulator_send), methods=["POST"]),
        Route("/console/simulator/settings", guard(simulator_settings), methods=["POST"]),
        Route("/console/simulator/reset", guard(simulator_reset), methods=["POST"]),
        Route("/console/export", guard(export_page), methods=["GET"]),
        Route("/console/export/signatures.{ext}", guard(export_file), methods=["GET"]),
        Route("/console/static/{name}", static, methods=["GET"]),
        # anything else under /console/: a session first, then 404
        Route("/console/{rest:path}", guard(not_found), methods=["GET", "POST"]),
    ]


# --- sign-in and out ------------------------------------------------------------------------

def _public(title: str, body: str, status: int = 200, script: str = "") -> Response:
    nonce = secrets.token_urlsafe(16)
    css = ASSETS["console.css"].decode("utf-8")
    html = public_page(title=title, body=body, css=css, nonce=nonce, script=script)
    csp = (f"default-src 'none'; style-src 'nonce-{nonce}'; script-src 'nonce-{nonce}'; "
           "img-src data:; "
           "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
    return harden(HTMLResponse(html, status_code=status), csp)


HOW_TO_SIGN_IN = """<p>The console has no passwords: you sign in with a one-time link.</p>
<ul>
<li>On the server: <code>python run_bot.py console-link</code></li>
<li>On Telegram, if you are on the organizers list: send <code>/console</code> to the bot</li>
</ul>
<p class="muted">A link works once, within 15 minutes of being made.</p>"""


def _refused() -> Response:
    body = notice("This sign-in link cannot be used: it was used already, it expired (links "
                  "last 15 minutes), or it is not complete.", "error") + HOW_TO_SIGN_IN
    return _public("Sign-in link not valid", body, status=403)


async def login_page(bot: Bot, request: Request) -> Response:
    token = request.query_params.get("token", "")
    if not token:
        if await auth.load_session(bot, request.cookies.get(auth.COOKIE)) is not None:
            return harden(RedirectResponse("/console/", status_code=303))
        intro = notice("You are signed out.", "ok") if "bye" in request.query_params else ""
        return _public("Sign in to the organizer console", intro + HOW_TO_SIGN_IN)
    # The interface's contract: opening the link starts the session, once. (The bot sends
    # the link with link previews off, so no preview fetch can use it up.)
    return await _sign_in(bot, token)


async def login_submit(bot: Bot, request: Request) -> Response:
    try:
        form = await read_form(request, limit=4096)
    except BodyTooLarge:
        return harden(Response("form too large", status_code=413))
    except ClientDisconnect:
        return Response(status_code=400)
    return await _sign_in(bot, form.get("token", ""))


async def _sign_in(bot: Bot, token: str) -> Response:
    cookie = await auth.start_session(bot, token)
    if cookie is None:
        log.warning("console: refused a sign-in with a used, expired or unknown link")
        return _refused()
    log.info("console: an organizer signed in")
    response = RedirectResponse("/console/", status_code=303)
    response.set_cookie(auth.COOKIE, cookie, max_age=int(auth.SESSION_TTL.total_seconds()),
                        path="/console", secure=bot.settings.public_url.startswith("https://"),
                        httponly=True, samesite="lax")
    return harden(response)


async def logout(ctx: Ctx) -> Response:
    await sandbox.erase(ctx.bot, ctx.session)
    await auth.end_session(ctx.bot, ctx.session)
    log.info("console: an organizer signed out")
    response = RedirectResponse(f"{LOGIN}?bye=1", status_code=303)
    response.delete_cookie(auth.COOKIE, path="/console",
                           secure=ctx.bot.settings.public_url.startswith("https://"),
                           httponly=True, samesite="lax")
    return response


def forbidden(ctx: Ctx) -> Response:
    body = notice("This form was not accepted: it came without this session's security token "
                  "(an old page, or a page from another site). Go back, reload the page and "
                  "try again.", "error")
    return ctx.page("Form not accepted", body, "dashboard", status=403)


async def not_found(ctx: Ctx) -> Response:
    body = "<p>There is no such page in the console. <a href=\"/console/\">Dashboard</a></p>"
    return ctx.page("Not found", body, "dashboard", status=404)


async def set_language(ctx: Ctx) -> Response:
    lang = ctx.form.get("lang", "")
    if lang in ctx.bot.campaign.languages:
        await auth.update_session(ctx.bot, ctx.session, lang=lang)
    target = ctx.form.get("next", "")
    if not target.startswith("/console") or target.startswith("//") or "\\" in target:
        target = "/console/"
    return RedirectResponse(target, status_code=303)


# --- dashboard ------------------------------------------------------------------------------

def _breakdown(counts: dict[str, int], label: Callable[[str], str], f: Fmt,
               heading: str) -> str:
    total = sum(counts.values())
    rows = [(e(label(key)), e(f.num(n)),
             f'<div class="sharecell">{share_bar(n, total)}<span>{e(f.share(n, total))}</span>'
             '</div>')
            for key, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    return table([heading, "Count", "Share"], rows, numeric=(1,), cls="breakdown")


async def dashboard(ctx: Ctx) -> Response:
    bot, f = ctx.bot, ctx.fmt
    data = await stats(bot.store, bot.campaign.id, bot.campaign.goal)
    here, goal = int(data["signatures"]), int(data["goal"])
    total = await bot.engine.tally.signature_count()  # with other bots' (central store)
    others = (f'<p class="sub">{e(f.num(here))} through this bot; the rest through others, '
              "from the central store</p>") if total != here else ""
    opted, contacts, stopped = (int(data["opted_in_updates"]), int(data["contacts"]),
                                int(data["stopped"]))
    today = datetime.now(UTC).date()
    by_day: dict[str, int] = data["signatures_by_day"]
    series = [(d, by_day.get(d.isoformat(), 0))
              for d in (today - timedelta(days=i) for i in range(CHART_DAYS - 1, -1, -1))]
    recent = sum(n for _, n in series)

    kpis = f"""<div class="grid kpis">
<section class="card kpi" aria-labelledby="k-sig"><h2 id="k-sig" class="label">Signatures</h2>
<p class="value">{e(f.num(total))}</p>
<progress max="{goal}" value="{min(total, goal)}" aria-labelledby="k-sig" aria-describedby="k-goal">
{e(f.share(total, goal))}</progress>
<p class="sub" id="k-goal">{e(f.share(total, goal))} of the goal of {e(f.num(goal))}</p>
{others}</section>
<section class="card kpi" aria-labelledby="k-today"><h2 id="k-today" class="label">Today (UTC)</h2>
<p class="value">{e(f.num(by_day.get(today.isoformat(), 0)))}</p>
<p class="sub">{e(f.num(recent))} in the last {CHART_DAYS} days</p></section>
<section class="card kpi" aria-labelledby="k-opt"><h2 id="k-opt" class="label">Want updates</h2>
<p class="value">{e(f.num(opted))}</p>
<p class="sub">{e(f.share(opted, here))} of signers opted in</p></section>
<section class="card kpi" aria-labelledby="k-stop"><h2 id="k-stop" class="label">Stopped</h2>
<p class="value">{e(f.num(stopped))}</p>
<p class="sub">{e(f.share(stopped, contacts))} of {e(f.num(contacts))} contacts</p></section>
</div>"""

    chart_rows = [(e(f.date(d)), e(f.num(n))) for d, n in reversed(series) if n]
    chart = f"""<section class="card" aria-labelledby="h-days">
<h2 id="h-days">Signatures per day</h2>
<p class="muted small">The last {CHART_DAYS} days (UTC dates).</p>
{day_chart(series, f, label=f"Bar chart: signatures per day, last {CHART_DAYS} days")}
<details class="data"><summary>Show as a table</summary>
{table(["Day", "Signatures"], chart_rows, numeric=(1,))}</details>
</section>"""

    breakdowns = f"""<div class="grid wide">
<section class="card" aria-labelledby="h-lang"><h2 id="h-lang">Signatures by language</h2>
{_breakdown(data["signatures_by_language"], ctx.language_name, f, "Language")}</section>
<section class="card" aria-labelledby="h-prov"><h2 id="h-prov">Signatures by province</h2>
{_breakdown(data["signatures_by_region"], province_name, f, "Province")}</section>
</div>"""
    by_channel = f"""<section class="card" aria-labelledby="h-chan">
<h2 id="h-chan">Signatures by channel</h2>
{_breakdown(data["signatures_by_channel"], channel_name, f, "Channel")}</section>"""

    return ctx.page("Dashboard", kpis + chart + breakdowns + _status(ctx, data, by_channel),
                    "dashboard")


def _status(ctx: Ctx, data: dict[str, Any], first: str) -> str:
    """Channel and sync status, in a row after `first`."""
    settings, health, f = ctx.bot.settings, ctx.health, ctx.fmt
    telegram_problem = health.get("telegram_error")
    whatsapp_on = bool(settings.twilio_whatsapp_number and settings.twilio_account_sid
                       and settings.twilio_auth_token)
    sender = settings.twilio_phone_number or "the messaging service"
    if settings.telegram_enabled and telegram_problem:
        telegram_state = badge("problem", "bad")
    else:
        telegram_state = on_off(settings.telegram_enabled)
    channels = [
        ("SMS", on_off(settings.sms_enabled), settings.sms_off_reason or f"sends from {sender}"),
        ("Telegram", telegram_state,
         settings.telegram_off_reason or telegram_problem
         or f"{health.get('telegram_mode') or 'starting'} mode"),
        ("WhatsApp", on_off(whatsapp_on),
         f"sends from {settings.twilio_whatsapp_number}" if whatsapp_on
         else "not configured: set TWILIO_WHATSAPP_NUMBER"),
    ]
    channel_list = "".join(
        f'<li><span class="name">{name}</span> {state}<p class="small muted">{e(detail)}</p></li>'
        for name, state, detail in channels)
    outbox = data["outbox"]
    error = health.get("sync_error")
    last = health.get("sync_last_pass") or {}
    last_text = "—"
    if last:
        counts = ", ".join(f"{e(f.num(n))} {e(k)}" for k, n in last.items() if k != "at")
        last_text = e(f.when(last.get("at"))) + (f" ({counts})" if counts else "")
    parked = int(outbox["parked"])
    cannot = int(health.get("sync_cannot_erase") or 0)
    sync = f"""<dl class="facts">
<dt>Central store</dt><dd>{e(health.get("sync_backend") or "not connected yet")}</dd>
<dt>Waiting to sync</dt><dd>{e(f.num(outbox["pending"]))}</dd>
<dt>Parked</dt><dd>{badge(f.num(parked), "bad") + " need a look: see the sync log" if parked
                   else e(f.num(0))}</dd>
<dt>Last error</dt><dd>{badge("error", "bad") + " " + e(error) if error else "none"}</dd>
<dt>Last pass</dt><dd>{last_text}</dd>
{f"<dt>Erasures to do by hand</dt><dd>{e(f.num(cannot))}</dd>" if cannot else ""}
</dl>"""
    return f"""<div class="grid">{first}
<section class="card" aria-labelledby="h-channels"><h2 id="h-channels">Channels</h2>
<ul class="channels">{channel_list}</ul></section>
<section class="card" aria-labelledby="h-sync"><h2 id="h-sync">Sync</h2>{sync}</section>
</div>"""


# --- broadcasts -----------------------------------------------------------------------------

def _texts(ctx: Ctx) -> dict[str, str]:
    return {lang: ctx.form.get(f"text_{lang}", "").strip()[:MAX_TEXT]
            for lang in ctx.bot.campaign.languages}


def cost_summary(ctx: Ctx, lang: str, text: str) -> tuple[str, str]:
    """What the live counter under a text shows (HTML), and the text as it will be sent."""
    bot, f = ctx.bot, ctx.fmt
    default = bot.campaign.default_language
    text = text.strip()
    if not text:
        if lang == default:
            return ("<strong>Required</strong>: contacts whose language has no text get this "
                    "one.", "")
        return (f"Empty: these contacts get the {e(ctx.language_name(default))} text.", "")
    if PLACEHOLDER.search(text):
        return ('<span class="over">Remove the {placeholder}: broadcast texts are sent as '
                "written.</span>", "")
    final = broadcast.final_text(bot, lang, text)
    as_sms = broadcast.sms_text(bot, lang, final)
    c = cost(as_sms)
    single = GSM7_SINGLE if c.encoding == "GSM-7" else UCS2_SINGLE
    word = "segment" if c.segments == 1 else "segments"
    over = ' class="over"' if c.segments >= broadcast.COSTLY_SEGMENTS else ""
    fits = (f"{e(f.num(c.units))} of {e(f.num(single))} characters" if c.segments == 1 else
            f"{e(f.num(c.units))} characters")
    price = f.money(c.segments * broadcast.PRICE_PER_SEGMENT, precise=True)
    html = (f"SMS: <strong{over}>{e(f.num(c.segments))} {word}</strong> · {c.encoding} · "
            f"{fits} · about {e(price)} per phone")
    return html, final


def compose_form(ctx: Ctx, texts: dict[str, str], segment: str) -> str:
    campaign = ctx.bot.campaign
    default = campaign.default_language

    def box(lang: str) -> str:
        summary, final = cost_summary(ctx, lang, texts.get(lang, ""))
        required = " (required)" if lang == default else ""
        needed = " required" if lang == default else ""
        return f"""<div class="field">
<label for="text-{e(lang)}">{e(ctx.language_name(lang))}{required}</label>
<textarea id="text-{e(lang)}" name="text_{e(lang)}" rows="{4 if lang == default else 2}"
 maxlength="{MAX_TEXT}"
 lang="{e(lang)}" dir="auto" data-lang="{e(lang)}" data-cost="cost-{e(lang)}"
 data-final="final-{e(lang)}" aria-describedby="cost-{e(lang)}"{needed}
>{e(texts.get(lang, ""))}</textarea>
<output id="cost-{e(lang)}" class="cost" for="text-{e(lang)}" aria-live="polite">{summary}</output>
<p id="final-{e(lang)}" class="final" dir="auto" aria-label="As sent">{e(final)}</p>
</div>"""

    others = [lang for lang in campaign.languages if lang != default]
    opened = " open" if any(texts.get(lang) for lang in others) else ""
    return f"""<form method="post" action="/console/broadcasts/preview" class="card compose">
{csrf_field(ctx.session.csrf)}
<h2>New broadcast</h2>
<p class="muted small">Each text is sent as written, with the organization's name in front and
how to stop at the end unless it already says so (the grey box shows the final text). Only
contacts who opted in to updates and did not stop get it.</p>
{box(default)}
<details class="more"{opened}><summary>Texts in other languages (optional)</summary>
{"".join(box(lang) for lang in others)}
</details>
<div class="field">
<label for="segment">Segment</label>
<input id="segment" name="segment" type="text" value="{e(segment)}" autocomplete="off"
 spellcheck="false" placeholder="e.g. signed=true and region=ON" aria-describedby="segment-help">
<p id="segment-help" class="hint">Empty: everyone who opted in. Otherwise terms joined with
<code>and</code>: <code>language=es</code>, <code>channel=sms</code> (or telegram, whatsapp),
<code>signed=true</code>, <code>region=ON</code> (a province code). A key repeated means any of
them: <code>region=ON and region=BC</code>.</p>
</div>
<div class="actions"><button type="submit">Preview: who gets it and what it costs</button></div>
</form>"""


def _history(ctx: Ctx, rows: list[dict[str, Any]]) -> str:
    f = ctx.fmt
    body = []
    for b in rows:
        s = b["states"]
        body.append((
            f'<a href="/console/broadcasts/{int(b["id"])}">#{int(b["id"])}</a>',
            e(f.when(b["created_at"])),
            segment_html(b["segment"]),
            _status_badge(b["status"]),
            e(f.num(b["total"])),
            e(f.num(s.get("delivered", 0))),
            e(f.num(s.get("sent", 0))),
            e(f.num(s.get("failed", 0) + s.get("undelivered", 0))),
            e(f.num(s.get("skipped", 0))),
        ))
    return table(["Broadcast", "Started", "Segment", "State", "Recipients", "Delivered",
                  "Sent", "Failed", "Skipped"], body, numeric=(4, 5, 6, 7, 8))


def segment_html(expr: str | None) -> str:
    return f"<code>{e(expr)}</code>" if expr else "everyone who opted in"


def _status_badge(status: str) -> str:
    names = {"running": ("warn", "sending"), "done": ("ok", "finished"),
             "cancelled": ("off", "cancelled")}
    kind, label = names.get(status, ("off", status))
    return badge(label, kind)


async def broadcasts_page(ctx: Ctx, texts: dict[str, str] | None = None, segment: str = "",
                          error: str = "", status: int = 200) -> Response:
    history = await broadcast_history(ctx.bot.store, limit=50)
    body = (notice(e(error), "error") if error else "") + compose_form(ctx, texts or {}, segment)
    body += f"""<section class="card" aria-labelledby="h-history"><h2 id="h-history">History</h2>
{_history(ctx, history)}</section>"""
    return ctx.page("Broadcasts", body, "broadcasts", status=status)


async def broadcast_cost(ctx: Ctx) -> Response:
    lang = ctx.request.query_params.get("lang", "")
    if lang not in ctx.bot.campaign.languages:
        return JSONResponse({"error": "unknown language"}, status_code=400)
    text = ctx.request.query_params.get("text", "")[:MAX_TEXT]
    summary, final = cost_summary(ctx, lang, text)
    result: dict[str, Any] = {"summary_html": summary, "final": final}
    if final:
        c = cost(broadcast.sms_text(ctx.bot, lang, final))
        result.update(encoding=c.encoding, segments=c.segments, units=c.units)
    return JSONResponse(result)


def _problems(ctx: Ctx, texts: dict[str, str]) -> str:
    default = ctx.bot.campaign.default_language
    if not texts.get(default):
        return (f"Write the {ctx.language_name(default)} text: contacts whose language has no "
                "text get it.")
    for lang, text in texts.items():
        if PLACEHOLDER.search(text):
            return (f"The {ctx.language_name(lang)} text has a {{placeholder}}: broadcast texts "
                    "are sent as written.")
    return ""


async def _plan(ctx: Ctx) -> tuple[dict[str, str], str, broadcast.Plan | None, str]:
    texts, segment = _texts(ctx), ctx.form.get("segment", "").strip()
    problem = _problems(ctx, texts)
    if problem:
        return texts, segment, None, problem
    message = broadcast.MessageFile({k: v for k, v in texts.items() if v}, None)
    try:
        return texts, segment, await broadcast.plan(ctx.bot, message, segment or None), ""
    except broadcast.BroadcastError as exc:
        return texts, segment, None, str(exc)


def _window_note(line: broadcast.Line, f: Fmt) -> str:
    """WhatsApp outside its 24-hour window: how many get the template, how many are skipped."""
    parts = []
    if getattr(line, "by_template", 0):
        parts.append(f"{f.num(line.by_template)} by template")
    if getattr(line, "no_template", 0):
        parts.append(f"{f.num(line.no_template)} skipped: no template")
    return f' <span class="muted small">({e(", ".join(parts))})</span>' if parts else ""


def preview_body(ctx: Ctx, texts: dict[str, str], segment: str, p: broadcast.Plan,
                 error: str = "") -> str:
    f, settings = ctx.fmt, ctx.bot.settings
    lines = [(e(ctx.language_name(line.language)) + (" <span class=\"muted small\">(default "
              "text)</span>" if line.fallback else ""),
              e(channel_name(line.channel)) + _window_note(line, f), e(f.num(line.recipients)),
              e(line.encoding or "—"), e(f.num(line.segments)) if line.segments else "—",
              e(f.num(line.recipients * line.segments)) if line.segments else "—")
             for line in p.lines]
    start, end = settings.broadcast_hours
    hours = ("at any hour" if (start, end) in ((0, 24), (0, 0)) or start == end else
             f"between {start:02d}:00 and {end:02d}:00 in each contact's local time; the others "
             "wait")
    shown, finals = set(), []
    for line in p.lines:
        if (line.language, line.channel) in shown:
            continue
        shown.add((line.language, line.channel))
        extra = (f" · {e(line.encoding)}, {e(f.num(line.segments))} "
                 f"{'segment' if line.segments == 1 else 'segments'}" if line.segments else "")
        finals.append(f"<h3>{e(ctx.language_name(line.language))} · "
                      f"{e(channel_name(line.channel))}{extra}</h3>"
                      f'<p class="final" dir="auto">{e(line.text)}</p>')
    hidden = "".join(f'<input type="hidden" name="text_{e(lang)}" value="{e(text)}">'
                     for lang, text in texts.items() if text)
    hidden += (f'<input type="hidden" name="segment" value="{e(segment)}">'
               f'<input type="hidden" name="key" value="{e(p.key)}">')
    if p.recipients:
        confirm = f"""<form method="post" action="/console/broadcasts/send" class="card">
{csrf_field(ctx.session.csrf)}{hidden}
<h2>Send</h2>
<p class="check"><input type="checkbox" id="confirm" name="confirm" value="yes" required>
<label for="confirm">I checked the texts: send this broadcast to {e(f.num(p.recipients))}
people now. Sent messages cannot be taken back.</label></p>
<div class="actions">
<button type="submit">Send to {e(f.num(p.recipients))} people</button>
<button type="submit" class="secondary" formaction="/console/broadcasts/edit" formnovalidate>
Edit the texts</button>
</div></form>"""
    else:
        confirm = f"""<form method="post" action="/console/broadcasts/edit" class="card">
{csrf_field(ctx.session.csrf)}{hidden}
{notice("Nobody matches: no contact in this segment opted in to updates. Nothing to send.", "warn")}
<div class="actions"><button type="submit" class="secondary">Edit the texts</button></div>
</form>"""
    warnings = "".join(notice(e(w), "warn") for w in p.warnings)
    return f"""{notice(e(error), "error") if error else ""}
<div class="grid kpis">
<section class="card kpi"><h2 class="label">Recipients</h2>
<p class="value">{e(f.num(p.recipients))}</p>
<p class="sub">Segment: {segment_html(p.segment.text)}</p></section>
<section class="card kpi"><h2 class="label">SMS segments</h2>
<p class="value">{e(f.num(p.sms_segments))}</p>
<p class="sub">Telegram messages cost nothing</p></section>
<section class="card kpi"><h2 class="label">Estimated cost</h2>
<p class="value">{e(f.money(p.sms_segments * p.price))}</p>
<p class="sub">at {e(f.money(p.price, precise=True))} per segment (an estimate)</p></section>
</div>
{warnings}
<section class="card" aria-labelledby="h-plan"><h2 id="h-plan">Who gets what</h2>
{table(["Language", "Channel", "Recipients", "Encoding", "Segments each", "Segments"], lines,
       numeric=(2, 4, 5))}
<p class="muted small">Sent {e(hours)}. A contact whose language has no text gets the
{e(ctx.language_name(ctx.bot.campaign.default_language))} one.</p>
</section>
<section class="card" aria-labelledby="h-final"><h2 id="h-final">The texts as sent</h2>
{"".join(finals) or '<p class="muted">No recipients, no texts.</p>'}</section>
{confirm}"""


async def broadcast_preview(ctx: Ctx) -> Response:
    texts, segment, p, problem = await _plan(ctx)
    if p is None:
        return await broadcasts_page(ctx, texts, segment, problem, status=400)
    return ctx.page("Broadcast preview (dry run)", preview_body(ctx, texts, segment, p),
                    "broadcasts")


async def broadcast_edit(ctx: Ctx) -> Response:
    return await broadcasts_page(ctx, _texts(ctx), ctx.form.get("segment", "").strip())


async def broadcast_send(ctx: Ctx) -> Response:
    texts, segment, p, problem = await _plan(ctx)
    if p is None:
        return await broadcasts_page(ctx, texts, segment, problem, status=400)
    title = "Broadcast preview (dry run)"
    if ctx.form.get("key") != p.key:
        return ctx.page(title, preview_body(ctx, texts, segment, p, "The texts or the segment "
                        "changed since the preview: check them again."), "broadcasts", 409)
    if ctx.form.get("confirm") != "yes":
        return ctx.page(title, preview_body(ctx, texts, segment, p, "Tick the box to confirm "
                        "before sending."), "broadcasts", 400)
    if not p.recipients:
        return ctx.page(title, preview_body(ctx, texts, segment, p), "broadcasts", 400)
    bid, new = await broadcast.create(ctx.bot, p)
    log.info("console: broadcast %d %s for %d recipients", bid, "created" if new else "resumed",
             p.recipients)
    return RedirectResponse(f"/console/broadcasts/{bid}", status_code=303)


async def _progress(ctx: Ctx, bid: int) -> dict[str, Any] | None:
    row = await ctx.bot.store.fetchone("SELECT * FROM broadcasts WHERE id = ?", (bid,))
    if row is None:
        return None
    c = await broadcast.counts(ctx.bot, bid)
    f = ctx.fmt
    failed = c.get("failed", 0) + c.get("undelivered", 0)
    numbers = {"queued": c.get("queued", 0), "sending": c.get("sending", 0),
               "sent": c.get("sent", 0), "delivered": c.get("delivered", 0), "failed": failed,
               "skipped": c.get("skipped", 0)}
    total = sum(c.values())
    done = numbers["sent"] + numbers["delivered"] + failed + numbers["skipped"]
    status = {"running": "sending", "done": "finished"}.get(row["status"], row["status"])
    text = {k: f.num(v) for k, v in numbers.items()}
    text.update(total=f.num(total), done=f.num(done), status=status,
                finished=f.when(row["finished_at"]), share=f.share(done, total))
    return {"row": row, "numbers": numbers, "total": total, "done": done, "text": text,
            "status": row["status"]}


COUNTS = (
    ("queued", "Waiting", "not sent yet (outside BROADCAST_HOURS, or next in line)"),
    ("sending", "Sending", "handed to the platform just now"),
    ("sent", "Sent", "accepted by the platform; no delivery report yet"),
    ("delivered", "Delivered", "the phone or Telegram got it"),
    ("failed", "Failed", "refused or undelivered"),
    ("skipped", "Skipped", "opted out since, channel off, or interrupted"),
)


async def broadcast_page(ctx: Ctx) -> Response:
    bid = int(ctx.request.path_params["bid"])
    data = await _progress(ctx, bid)
    if data is None:
        return await not_found(ctx)
    f, row, text = ctx.fmt, data["row"], data["text"]
    counts = "".join(
        f'<div class="card kpi"><dt class="label">{label}</dt>'
        f'<dd class="value" data-k="{key}">{e(text[key])}</dd>'
        f'<dd class="sub">{e(hint)}</dd></div>'
        for key, label, hint in COUNTS)
    texts = json.loads(row["texts"])  # language -> text, and WhatsApp templates under a key
    text_list = "".join(f"<h3>{e(ctx.language_name(lang))}</h3>"
                        f'<p class="final" dir="auto">{e(t)}</p>' for lang, t in texts.items()
                        if lang in ctx.bot.campaign.languages and isinstance(t, str))
    body = f"""<div data-poll="/console/broadcasts/{bid}/status">
<section class="card" aria-labelledby="h-progress">
<h2 id="h-progress">Progress</h2>
<dl class="facts">
<dt>State</dt><dd data-k="status">{e(text["status"])}</dd>
<dt>Started</dt><dd>{e(f.when(row["created_at"]))}</dd>
<dt>Finished</dt><dd data-k="finished">{e(text["finished"])}</dd>
<dt>Segment</dt><dd>{segment_html(row["segment"])}</dd>
</dl>
<p><label for="bar">Done</label>: <span data-k="done">{e(text["done"])}</span> of
<span data-k="total">{e(text["total"])}</span> (<span data-k="share">{e(text["share"])}</span>)</p>
<progress id="bar" max="{max(data["total"], 1)}" value="{data["done"]}"></progress>
<dl class="grid counts">{counts}</dl>
<p class="muted small">This page updates itself every two seconds. The broadcast worker of
<code>serve</code> sends it, paced to SEND_RATE_SMS and SEND_RATE_TELEGRAM.</p>
</section>
<section class="card" aria-labelledby="h-problems"><h2 id="h-problems">Failed and skipped</h2>
<div data-h="problems">{await _failures(ctx, bid)}</div></section>
</div>
<section class="card" aria-labelledby="h-texts"><h2 id="h-texts">Texts</h2>{text_list}</section>
<p><a href="/console/broadcasts">All broadcasts</a></p>"""
    return ctx.page(f"Broadcast #{bid}", body, "broadcasts")


async def _failures(ctx: Ctx, bid: int) -> str:
    """Why messages failed or were skipped, most common first."""
    rows = await ctx.bot.store.fetchall(
        "SELECT state, coalesce(error, '') AS error, count(*) AS n FROM broadcast_recipients "
        "WHERE broadcast_id = ? AND state IN ('failed', 'undelivered', 'skipped') "
        "GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 20", (bid,))
    return table(["State", "Reason", "Messages"],
                 [(e(r["state"]), e(r["error"] or "—"), e(ctx.fmt.num(r["n"]))) for r in rows],
                 numeric=(2,))


async def broadcast_status(ctx: Ctx) -> Response:
    bid = int(ctx.request.path_params["bid"])
    data = await _progress(ctx, bid)
    if data is None:
        return JSONResponse({"error": "no such broadcast"}, status_code=404)
    result = {k: data[k] for k in ("status", "total", "done", "numbers", "text")}
    result["html"] = {"problems": await _failures(ctx, bid)}
    return JSONResponse(result)


# --- simulator ------------------------------------------------------------------------------

def render_item(ctx: Ctx, item: sandbox.Item) -> str:
    body = item.body
    if item.sender == "me":
        shown = f"[{body['label']}]" if body.get("label") else body.get("text", "")
        return (f'<li class="msg me"><span class="visually-hidden">You: </span>'
                f'<p dir="auto">{e(shown)}</p></li>')
    if item.sender == "note":
        return f'<li class="msg note">{e(body.get("text", ""))}</li>'
    reply = Reply.from_json(body["reply"])

    def press(c: Choice) -> str:
        return (f'<form method="post" action="/console/simulator/send" data-sim>'
                f'{csrf_field(ctx.session.csrf)}<input type="hidden" name="text" '
                f'value="{e(c.value)}"><input type="hidden" name="label" value="{e(c.label)}">'
                f'<button type="submit">{e(c.label)}</button></form>')

    def bubble(text: str, extra: str = "") -> str:
        return (f'<li class="msg bot"><span class="visually-hidden">Bot: </span>'
                f'<p dir="auto">{e(text)}</p>{extra}</li>')

    if body.get("channel") == "telegram":
        from bot.channels import telegram

        rows = "".join(f'<div class="row">{"".join(press(c) for c in row)}</div>'
                       for row in telegram.buttons(reply))
        return bubble(reply.text, f'<div class="keyboard">{rows}</div>' if rows else "")
    from bot.channels import sms

    if body.get("channel") == "whatsapp":
        from bot.channels import whatsapp

        content = whatsapp.content_of(ctx.bot.catalogs, reply)
        if content is None:  # no choices, or they do not fit: numbered text, as sent
            return bubble(sms.render(reply, ctx.bot.campaign, "whatsapp"))
        choices = reply.labelled()
        if "twilio/quick-reply" in content["types"]:
            buttons = f'<div class="row">{"".join(press(c) for c in choices)}</div>'
            return bubble(reply.text, f'<div class="keyboard">{buttons}</div>')
        choose = content["types"]["twilio/list-picker"]["button"]
        items = "".join(f'<div class="row">{press(c)}</div>' for c in choices)
        return bubble(reply.text, f'<details class="keyboard picker"><summary>{e(choose)}'
                                  f'</summary>{items}</details>')

    shown = sms.render(reply, ctx.bot.campaign)
    c = cost(shown)
    word = "segment" if c.segments == 1 else "segments"
    return (f'<li class="msg bot"><span class="visually-hidden">Bot: </span>'
            f'<p dir="auto">{e(shown)}</p><span class="meta">{c.encoding} · '
            f'{e(ctx.fmt.num(c.segments))} {word} · {e(ctx.fmt.num(c.units))} characters</span>'
            "</li>")


async def simulator_page(ctx: Ctx) -> Response:
    session, campaign = ctx.session, ctx.bot.campaign
    items = await sandbox.transcript(ctx.bot, session)
    chat = "".join(render_item(ctx, item) for item in items) or (
        '<li class="msg note">Nothing said yet. Say hello, or try SIGN, HELP, MENU or STOP.</li>')
    channel = session.sim_channel
    radios = "".join(
        f'<label><input type="radio" name="channel" value="{c}"'
        f'{" checked" if c == channel else ""}> {channel_name(c)}</label>'
        for c in sandbox.CHANNELS)
    options = '<option value="">None (the bot asks)</option>' + "".join(
        f'<option value="{e(c)}"{" selected" if c == session.sim_lang else ""}>'
        f"{e(ctx.language_name(c))}</option>" for c in campaign.languages)
    phone_name = {"telegram": "Telegram chat", "whatsapp": "WhatsApp chat"}.get(
        channel, "Basic phone (SMS)")
    lang_note = (f" · language {e(ctx.language_name(session.sim_lang))}"
                 if session.sim_lang else "")
    body = f"""<div class="sim">
<section class="phone {e(channel)}" aria-labelledby="phone-title">
<div class="phone-head"><h2 id="phone-title">{phone_name}</h2>
<span>sandbox contact <code>{e(session.sandbox)}</code>{lang_note}</span></div>
<ol id="chat" class="chat" role="log" aria-live="polite" aria-label="Conversation" tabindex="0">
{chat}</ol>
<form id="composer" method="post" action="/console/simulator/send" data-sim class="composer">
{csrf_field(session.csrf)}
<label for="sim-text" class="visually-hidden">Message</label>
<input id="sim-text" name="text" type="text" autocomplete="off" maxlength="{MAX_TEXT}" required
 dir="auto" placeholder="Type a message, e.g. hello or SIGN">
<button type="submit">Send</button>
</form>
<p id="sim-status" class="small muted" role="status"></p>
</section>
<aside class="sim-side">
<form method="post" action="/console/simulator/settings" class="card">
{csrf_field(session.csrf)}
<h2>Phone</h2>
<fieldset><legend>Channel</legend><div class="radios">{radios}</div></fieldset>
<div class="field"><label for="sim-lang">Phone language</label>
<select id="sim-lang" name="lang">{options}</select>
<p class="hint">SMS: a language here welcomes the contact in it, already chosen; none lists
the languages (WhatsApp too). Telegram: the app's language, as
<code>language_code</code>.</p></div>
<button type="submit" class="secondary">Apply and start over</button>
</form>
<form method="post" action="/console/simulator/reset" class="card">
{csrf_field(session.csrf)}
<h2>Reset</h2>
<p class="small">Erase this sandbox conversation, and any test signature it made, and start
again as a new contact.</p>
<button type="submit" class="secondary">Reset the conversation</button>
</form>
<div class="card small"><h2>About the sandbox</h2>
<p>The simulator talks to the real engine, flows and texts. Its contacts
(<code>sandbox:…</code>) are never counted, exported, sent broadcasts or synced.</p>
<p>Over real SMS, Twilio answers STOP, HELP and START itself; here the bot answers them.</p>
</div>
</aside>
</div>"""
    return ctx.page("Simulator", body, "simulator")


async def simulator_send(ctx: Ctx) -> Response:
    text = ctx.form.get("text", "")
    label = ctx.form.get("label") or None
    html, status = "", ""
    if text.strip():
        items = await sandbox.say(ctx.bot, ctx.session, text, label)
        html = "".join(render_item(ctx, item) for item in items)
    else:
        status = "Type a message first."
    if ctx.wants_json:
        return JSONResponse({"html": html, "status": status})
    return RedirectResponse("/console/simulator#composer", status_code=303)


async def simulator_settings(ctx: Ctx) -> Response:
    await sandbox.reset(ctx.bot, ctx.session, ctx.form.get("channel"), ctx.form.get("lang"),
                        keep_lang=False)
    return RedirectResponse("/console/simulator", status_code=303)


async def simulator_reset(ctx: Ctx) -> Response:
    await sandbox.reset(ctx.bot, ctx.session)
    return RedirectResponse("/console/simulator", status_code=303)


# --- export ---------------------------------------------------------------------------------

async def export_page(ctx: Ctx) -> Response:
    f = ctx.fmt
    n = await ctx.bot.store.signature_count(ctx.bot.campaign.id)
    columns = ", ".join(f"<code>{e(c)}</code>" for c in EXPORT_COLUMNS)
    body = f"""<section class="card">
<h2>Signatures</h2>
<p><strong>{e(f.num(n))}</strong> signatures in this bot's database, the same that
<code>python run_bot.py export signatures</code> writes.</p>
<div class="actions">
<a class="button" href="/console/export/signatures.csv" download>Download CSV</a>
<a class="button secondary" href="/console/export/signatures.jsonl" download>Download JSON lines</a>
</div>
</section>
<section class="card"><h2>Columns</h2>
<p class="small">The central store's columns, in this order; booleans are <code>true</code> or
<code>false</code>; times are ISO 8601 UTC. The file holds names and phone numbers: keep it
safe and delete it when done. Sandbox contacts of the simulator are never in it.</p>
<p>{columns}</p></section>"""
    return ctx.page("Export", body, "export")


async def export_file(ctx: Ctx) -> Response:
    ext = ctx.request.path_params["ext"]
    if ext not in ("csv", "jsonl"):
        return await not_found(ctx)
    out = io.StringIO()
    count = await export_signatures(ctx.bot.store, ctx.bot.campaign.id, out, ext)
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    name = f"signatures-{ctx.bot.campaign.id}-{day}.{ext}"
    log.info("console: %d signatures exported as %s", count, ext)
    media = "text/csv; charset=utf-8" if ext == "csv" else "application/x-ndjson; charset=utf-8"
    return Response(out.getvalue(), media_type=media,
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
