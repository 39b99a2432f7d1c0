"""The campaign definition: a TOML file organizers edit without touching code."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from bot.config import ConfigError


@dataclass(frozen=True)
class Campaign:
    id: str
    organization: str
    petition_organization: str
    goal: int
    default_language: str
    languages: tuple[str, ...]
    timezone: str = "America/Toronto"
    gsm7_languages: frozenset[str] = frozenset()
    target: dict[str, str] = field(default_factory=dict)
    texts: dict[str, dict[str, str]] = field(default_factory=dict)

    def target_in(self, lang: str) -> str:
        return self.target.get(lang) or self.target.get(self.default_language) or ""


def load_campaign(path: Path) -> Campaign:
    """Read and check a campaign file; a ConfigError says what is wrong in it."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"campaign file {path} not found: set CAMPAIGN_FILE") from exc
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"campaign file {path} is not valid TOML: {exc}") from exc

    def need(key: str, kind: type) -> object:
        value = data.get(key)
        if not isinstance(value, kind) or isinstance(value, bool) and kind is int:
            raise ConfigError(f"campaign file {path}: '{key}' must be a {kind.__name__}")
        return value

    languages = need("languages", list)
    if not languages or not all(isinstance(code, str) and code for code in languages):  # type: ignore[union-attr]
        raise ConfigError(f"campaign file {path}: 'languages' must list language codes")
    default = need("default_language", str)
    if default not in languages:  # type: ignore[operator]
        raise ConfigError(f"campaign file {path}: default_language {default!r} is not in languages")
    goal = need("goal", int)
    if goal <= 0:  # type: ignore[operator]
        raise ConfigError(f"campaign file {path}: 'goal' must be above 0")
    texts = data.get("text", {})
    target = data.get("target", {})
    if isinstance(target, str):
        target = {default: target}  # type: ignore[dict-item]
    if not isinstance(texts, dict) or not isinstance(target, dict):
        raise ConfigError(f"campaign file {path}: [text.<lang>] and [target] must be tables")
    return Campaign(
        id=str(need("id", str)),
        organization=str(need("organization", str)),
        petition_organization=str(data.get("petition_organization") or data["organization"]),
        goal=int(goal),  # type: ignore[call-overload]
        default_language=str(default),
        languages=tuple(languages),  # type: ignore[arg-type]
        timezone=str(data.get("timezone", "America/Toronto")),
        gsm7_languages=frozenset(data.get("gsm7_languages", [])),
        target={str(k): str(v) for k, v in target.items()},
        texts={str(k): {str(a): str(b) for a, b in v.items()} for k, v in texts.items()},
    )
