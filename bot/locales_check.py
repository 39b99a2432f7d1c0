"""`locales check`: every catalog complete, placeholders as in English, SMS texts within budget."""

from __future__ import annotations

import sys

from bot.app import load_texts
from bot.config import Settings
from bot.i18n import LOCALES_DIR, PLACEHOLDER, SOURCE_LANGUAGE, read_catalog
from bot.sms_text import cost, to_gsm7

#: Segments one SMS text may take: one where GSM-7 fits the language, two for UCS-2 scripts.
BUDGET = {"GSM-7": 1, "UCS-2": 2}
#: Texts that are button captions, never sent as SMS alone.
NOT_SMS = ("button_",)


def check(settings: Settings) -> int:
    campaign, catalogs = load_texts(settings)
    errors: list[str] = []
    warnings: list[str] = []
    source = read_catalog(LOCALES_DIR / SOURCE_LANGUAGE / "LC_MESSAGES" / "bot.po")
    print(f"{'lang':<5} {'texts':>5} {'encoding':<8} {'max seg':>7}")
    for lang in campaign.languages:
        texts = catalogs.texts[lang]
        missing = sorted(set(source) - set(texts))
        errors += [f"{lang}: missing text {key!r}" for key in missing]
        worst = 0
        encodings = set()
        for key, template in texts.items():
            if key not in source:
                warnings.append(f"{lang}: {key!r} is not in the English catalog (unused)")
                continue
            want = sorted(PLACEHOLDER.findall(source[key]))
            got = sorted(PLACEHOLDER.findall(template))
            if want != got:
                errors.append(f"{lang}: {key!r} has placeholders {got}, English has {want}")
                continue
            if key.startswith(NOT_SMS):
                continue
            sample = catalogs.text(lang, key, name="Maria Lopez", count="12,345",
                                   summary=catalogs.text(lang, "petition_summary"))
            if lang in campaign.gsm7_languages:
                sample = to_gsm7(sample)
            c = cost(sample)
            encodings.add(c.encoding)
            worst = max(worst, c.segments)
            if c.segments > BUDGET[c.encoding]:
                errors.append(f"{lang}: {key!r} takes {c.segments} {c.encoding} segments "
                              f"(budget {BUDGET[c.encoding]}): shorten it")
        print(f"{lang:<5} {len(texts):>5} {'/'.join(sorted(encodings)):<8} {worst:>7}")
    for line in warnings:
        print(f"warning: {line}", file=sys.stderr)
    for line in errors:
        print(f"error: {line}", file=sys.stderr)
    print("locales check: " + ("failed" if errors else "ok"))
    return 1 if errors else 0
