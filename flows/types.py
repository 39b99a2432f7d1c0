"""What a flow reads (the contact as it stands, the message) and writes (replies and effects)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class Choice:
    """One option: a Telegram button or a numbered SMS line. `value` is what typing it sends."""

    label: str
    value: str


@dataclass(frozen=True)
class Reply:
    text: str
    lang: str
    choices: tuple[Choice, ...] = ()
    numbered: bool = False  # SMS lists the choices as `1 English` lines under the text

    def labelled(self) -> tuple[Choice, ...]:
        """The choices as a button or a line shows them: a numbered list keeps its numbers
        (`2 Español`), so a text that says "reply with a number" still makes sense."""
        if not self.numbered:
            return self.choices
        return tuple(Choice(f"{i} {c.label}", c.value) for i, c in enumerate(self.choices, 1))

    def plain(self) -> str:
        """The text as a basic phone shows it: numbered choices written out."""
        if not self.numbered or not self.choices:
            return self.text
        return "\n".join([self.text, *(choice.label for choice in self.labelled())])

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "lang": self.lang,
            "choices": [[c.label, c.value] for c in self.choices],
            "numbered": self.numbered,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Reply:
        return cls(
            text=data["text"],
            lang=data["lang"],
            choices=tuple(Choice(label, value) for label, value in data.get("choices", [])),
            numbered=bool(data.get("numbered")),
        )


@dataclass(frozen=True)
class ContactView:
    """The contact as the flow sees it at the start of a turn."""

    address: str
    channel: str
    language: str | None
    state: str
    data: dict[str, Any]
    stopped: bool
    signed: bool


# Effects: what a turn changes besides state, language and data. The engine commits them
# in the same transaction as the new state.
@dataclass(frozen=True)
class Sign:
    full_name: str
    region: str | None
    summary_version: str  # which petition text the person agreed to


@dataclass(frozen=True)
class SetUpdates:
    opted_in: bool


@dataclass(frozen=True)
class Stop:
    pass


@dataclass(frozen=True)
class Start:
    pass


@dataclass(frozen=True)
class Erase:
    pass


Effect = Sign | SetUpdates | Stop | Start | Erase


class Texts(Protocol):
    """What a flow needs of the catalogs."""

    def text(self, lang: str, key: str, **values: object) -> str: ...
    def number(self, value: int, lang: str) -> str: ...
    def language_name(self, lang: str) -> str: ...
    def language_names(self, lang: str) -> list[str]: ...


class Counter(Protocol):
    async def signature_count(self) -> int: ...


@dataclass
class Turn:
    """One inbound message being handled: read the contact, say replies, record effects."""

    contact: ContactView
    text: str
    texts: Texts
    languages: tuple[str, ...]
    default_language: str
    counter: Counter
    language_hint: str | None = None
    media: bool = False
    language: str | None = None
    state: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    replies: list[Reply] = field(default_factory=list)
    effects: list[Effect] = field(default_factory=list)
    keyword: str | None = None  # set when the message was taken as a keyword
    answered: bool = False  # set when a yes/no question took the message as its answer

    def __post_init__(self) -> None:
        self.language = self.contact.language
        self.state = self.contact.state
        self.data = dict(self.contact.data)

    @property
    def lang(self) -> str:
        return self.language or self.default_language

    def say(self, key: str, *, choices: tuple[Choice, ...] = (), numbered: bool = False,
            **values: object) -> None:
        self.replies.append(
            Reply(self.texts.text(self.lang, key, **values), self.lang, choices, numbered)
        )
