"""HTML of the console: the page frame and the small parts pages are made of.

Plain Python strings: every value that comes from data goes through `e()`. No inline script
or style attribute anywhere (the Content-Security-Policy forbids them): charts and bars are
SVG drawn with attributes and classes, styled by the static stylesheet.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from html import escape

from bot.console.fmt import Fmt

NAV = (
    ("dashboard", "/console/", "Dashboard"),
    ("broadcasts", "/console/broadcasts", "Broadcasts"),
    ("simulator", "/console/simulator", "Simulator"),
    ("export", "/console/export", "Export"),
)
#: Bumped when console.css or console.js change, so browsers fetch them again.
ASSET_VERSION = "5"


def e(value: object) -> str:
    return escape(str(value), quote=True)


def csrf_field(token: str) -> str:
    return f'<input type="hidden" name="csrf" value="{e(token)}">'


def frame(*, title: str, body: str, fmt: Fmt, org: str, current: str, csrf: str,
          languages: Sequence[tuple[str, str]], back: str, footer: str = "",
          head: str = "") -> str:
    """A signed-in page: header with navigation, language selector and sign-out."""
    links = "".join(
        f'<li><a href="{href}"{" aria-current=page" if key == current else ""}>{label}</a></li>'
        for key, href, label in NAV)
    options = "".join(
        f'<option value="{e(code)}"{" selected" if code == fmt.lang else ""}>{e(name)}</option>'
        for code, name in languages)
    return f"""<!doctype html>
<html lang="{e(fmt.lang)}" dir="{fmt.dir}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(title)} · {e(org)} console</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/console/static/console.css?v={ASSET_VERSION}">
<script src="/console/static/console.js?v={ASSET_VERSION}" defer></script>
{head}
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header class="top">
  <div class="top-row">
    <a class="brand" href="/console/">{e(org)} <span>organizer console</span></a>
    <div class="tools">
      <form method="post" action="/console/language" class="lang-form">
        {csrf_field(csrf)}<input type="hidden" name="next" value="{e(back)}">
        <label for="ui-lang">Language</label>
        <select id="ui-lang" name="lang">{options}</select>
        <button type="submit" class="secondary">Apply</button>
      </form>
      <form method="post" action="/console/logout">
        {csrf_field(csrf)}<button type="submit" class="secondary">Sign out</button>
      </form>
    </div>
  </div>
  <nav aria-label="Console"><ul>{links}</ul></nav>
</header>
<main id="main" tabindex="-1">
<h1>{e(title)}</h1>
{body}
</main>
<footer class="foot">{footer}</footer>
</body>
</html>"""


def public_page(*, title: str, body: str, css: str, nonce: str, script: str = "") -> str:
    """A page shown without a session (sign-in): its style inline, allowed by a nonce."""
    js = f'<script nonce="{e(nonce)}">{script}</script>' if script else ""
    return f"""<!doctype html>
<html lang="en" dir="ltr">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{e(title)}</title>
<link rel="icon" href="data:,">
<style nonce="{e(nonce)}">{css}</style>
</head>
<body class="public">
<main id="main" class="card narrow">
<h1>{e(title)}</h1>
{body}
</main>
{js}
</body>
</html>"""


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], *, caption: str = "",
          numeric: Sequence[int] = (), cls: str = "") -> str:
    """A table in a scrolling wrapper (phones); `rows` hold HTML already escaped."""
    head = "".join(
        f'<th scope="col"{" class=num" if i in numeric else ""}>{h}</th>'
        for i, h in enumerate(headers))
    body = []
    for row in rows:
        cells = "".join(
            (f'<th scope="row">{c}</th>' if i == 0 else
             f'<td{" class=num" if i in numeric else ""}>{c}</td>')
            for i, c in enumerate(row))
        body.append(f"<tr>{cells}</tr>")
    cap = f"<caption>{caption}</caption>" if caption else ""
    empty = (f'<tr><td colspan="{len(headers)}" class="muted">None yet.</td></tr>'
             if not body else "")
    return (f'<div class="table-wrap"><table class="{cls}">{cap}<thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}{empty}</tbody></table></div>')


def share_bar(part: int, whole: int) -> str:
    """A small horizontal bar (decorative: the number beside it says the same)."""
    width = 0.0 if not whole else max(0.0, min(100.0, 100.0 * part / whole))
    return ('<svg class="share" viewBox="0 0 100 8" preserveAspectRatio="none" '
            f'aria-hidden="true" focusable="false"><rect class="track" width="100" height="8"/>'
            f'<rect class="fill" width="{width:.2f}" height="8"/></svg>')


def _ceiling(value: int) -> int:
    """The next round number at or above `value`: 1, 2, 5, 10, 20, 50, …"""
    step = 1
    while True:
        for m in (1, 2, 5):
            if m * step >= value:
                return m * step
        step *= 10


def day_chart(series: Sequence[tuple[date, int]], fmt: Fmt, *, label: str) -> str:
    """Signatures per day: bars in an SVG that stretches to any width, axis labels in HTML
    (so they keep their size on a phone), a title on each bar."""
    peak = _ceiling(max((n for _, n in series), default=0) or 1)
    width, height, slot = max(len(series), 1) * 10, 100, 10
    parts = [f'<svg class="chart-plot" viewBox="0 0 {width} {height}" '
             'preserveAspectRatio="none" focusable="false">']
    for y in (0, height / 2, height):
        parts.append(f'<line class="grid" x1="0" x2="{width}" y1="{y}" y2="{y}" '
                     'vector-effect="non-scaling-stroke"/>')
    for i, (day, n) in enumerate(series):
        h = height * n / peak
        parts.append(f'<rect class="bar" x="{i * slot + 1.5}" y="{height - h:.2f}" width="7" '
                     f'height="{h:.2f}"><title>{e(fmt.date(day))}: {e(fmt.num(n))}</title></rect>')
    parts.append("</svg>")
    middle = fmt.num(peak / 2) if peak > 1 else ""
    ticks = "".join(f"<span>{e(t)}</span>" for t in (fmt.num(peak), middle, fmt.num(0)))
    days = ([series[0][0], series[len(series) // 2][0], series[-1][0]] if series else [])
    marks = "".join(f"<span>{e(fmt.day(d))}</span>" for d in days)
    return (f'<figure class="chart" role="img" aria-label="{e(label)}" dir="ltr">'
            f'<div class="chart-y" aria-hidden="true">{ticks}</div>{"".join(parts)}'
            f'<div class="chart-x" aria-hidden="true">{marks}</div></figure>')


def badge(label: str, kind: str = "off") -> str:
    """A small label; `kind` is ok, off, warn or bad (colour, with the word saying the same)."""
    return f'<span class="badge {kind}">{e(label)}</span>'


def on_off(on: bool) -> str:
    return badge("on", "ok") if on else badge("off", "off")


def notice(text: str, kind: str = "info") -> str:
    role = ' role="alert"' if kind == "error" else ""
    return f'<div class="notice {kind}"{role}>{text}</div>'
