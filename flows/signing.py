"""The conversation: choose a language, read the petition, sign it, manage consent.

One table of named states (`STEPS`), one small function per step, each returning the
next state; keywords (`KEYWORD_HANDLERS`) work at every step. The diagram is in
`signing.mmd` beside this file. Nothing here knows which channel a message came on.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from enum import StrEnum

from flows.keywords import Answer, Keyword, match_answer, match_keyword
from flows.languages import parse_language
from flows.regions import parse_region
from flows.types import Choice, Erase, SetUpdates, Sign, Start, Stop, Turn
from flows.words import clean_free_text, fold

NAME_LIMIT = 80
LANGUAGE_BUTTON = "lang:"


class State(StrEnum):
    NEW = "new"
    CHOOSE_LANGUAGE = "choose_language"
    MENU = "menu"
    ASK_NAME = "ask_name"
    ASK_REGION = "ask_region"
    CONFIRM = "confirm"
    ASK_UPDATES = "ask_updates"
    CONFIRM_DELETE = "confirm_delete"


#: States whose question is answered yes or no (so `YES` there is an answer, not Twilio's START).
YES_NO_STATES = frozenset({State.CONFIRM, State.ASK_UPDATES, State.CONFIRM_DELETE})

Step = Callable[[Turn], Awaitable[State]]


# --- prompts: what entering a state says -------------------------------------------------

def _yes_no(t: Turn, yes: str = "button_yes", no: str = "button_no") -> tuple[Choice, ...]:
    return (Choice(t.texts.text(t.lang, yes), "1"), Choice(t.texts.text(t.lang, no), "2"))


def _language_choices(t: Turn) -> tuple[Choice, ...]:
    names = t.texts.language_name
    return tuple(Choice(names(code), LANGUAGE_BUTTON + code) for code in t.languages)


def _menu_choices(t: Turn) -> tuple[Choice, ...]:
    return (
        Choice(t.texts.text(t.lang, "button_sign"), "SIGN"),
        Choice(t.texts.text(t.lang, "button_language"), "LANGUAGE"),
        Choice(t.texts.text(t.lang, "button_help"), "HELP"),
    )


def petition_summary(t: Turn) -> str:
    return t.texts.text(t.lang, "petition_summary")


def summary_version(text: str) -> str:
    """A short fingerprint of the petition text a person agreed to, for the consent ledger."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def show_menu(t: Turn) -> State:
    t.say("menu", choices=_menu_choices(t))
    return State.MENU


def show_petition(t: Turn) -> State:
    if t.contact.signed:
        return show_menu(t)
    t.say("petition_1")
    t.say("petition_2", choices=(Choice(t.texts.text(t.lang, "button_sign"), "SIGN"),))
    return State.MENU


def ask_name(t: Turn) -> State:
    t.say("ask_name")
    return State.ASK_NAME


def ask_region(t: Turn) -> State:
    t.say("ask_region", choices=(Choice(t.texts.text(t.lang, "button_skip"), "SKIP"),))
    return State.ASK_REGION


def ask_confirm(t: Turn) -> State:
    t.say("confirm", name=t.data["name"], summary=petition_summary(t), choices=_yes_no(t))
    return State.CONFIRM


def ask_updates(t: Turn) -> State:
    t.say("ask_optin", choices=_yes_no(t))
    return State.ASK_UPDATES


def reprompt(t: Turn, state: State) -> State:
    """Say the current question again (after a language change mid-flow)."""
    prompts: dict[State, Callable[[Turn], State]] = {
        State.ASK_NAME: ask_name,
        State.ASK_REGION: ask_region,
        State.CONFIRM: ask_confirm,
        State.ASK_UPDATES: ask_updates,
    }
    return prompts.get(state, show_petition)(t)


#: Steps a language change comes back to (the question is asked again in the new language).
RESUMABLE = frozenset({State.ASK_NAME, State.ASK_REGION, State.CONFIRM, State.ASK_UPDATES})


async def _count(t: Turn) -> str:
    return t.texts.number(await t.counter.signature_count(), t.lang)


# --- steps: the answer to the question each state asked ----------------------------------

async def welcome(t: Turn) -> State:
    """First message of a new contact: welcome and the language list."""
    if t.language_hint in t.languages:
        t.language = t.language_hint
        t.say("welcome_chosen", choices=_language_choices(t))
        return show_petition(t)
    t.say("welcome", choices=_language_choices(t), numbered=True)
    return State.CHOOSE_LANGUAGE


async def choose_language(t: Turn) -> State:
    """A number, code or name picks the language; then the petition, or the question the
    contact was at when they asked for LANGUAGE."""
    code = parse_language(t.text, t.languages, {c: t.texts.language_names(c) for c in t.languages})
    if code is None:
        t.say("language_retry", choices=_language_choices(t), numbered=True)
        return State.CHOOSE_LANGUAGE
    t.language = code
    resume = t.data.pop("resume", None)
    if resume in RESUMABLE:
        return reprompt(t, State(resume))
    return show_petition(t)


async def in_menu(t: Turn) -> State:
    """Between flows: a language name switches language; anything else gets a hint."""
    names = {c: t.texts.language_names(c) for c in t.languages}
    # A number, or a yes/no in the contact's language (Tagalog `hindi`), is not a language here.
    plain = fold(t.text).isdigit() or match_answer(t.text, t.language) is not None
    code = None if plain else parse_language(t.text, t.languages, names)
    if code is not None:
        t.language = code
        return show_petition(t)
    t.say("hint", choices=_menu_choices(t))
    return State.MENU


async def got_name(t: Turn) -> State:
    """Keep the name; ask for the province."""
    name = clean_free_text(t.text, NAME_LIMIT)
    if sum(ch.isalpha() for ch in name) < 2:
        t.say("name_retry")
        return State.ASK_NAME
    t.data["name"] = name
    return ask_region(t)


async def got_region(t: Turn) -> State:
    """A province or territory (or SKIP); then the confirmation."""
    if match_answer(t.text, t.language) is Answer.SKIP:
        t.data["region"] = None
        return ask_confirm(t)
    region = parse_region(t.text)
    if region is None:
        t.say("region_retry", choices=(Choice(t.texts.text(t.lang, "button_skip"), "SKIP"),))
        return State.ASK_REGION
    t.data["region"] = region
    return ask_confirm(t)


async def got_confirmation(t: Turn) -> State:
    """Yes signs, no signs nothing and shows the menu."""
    answer = match_answer(t.text, t.language)
    if answer is Answer.YES:
        t.answered = True
        t.effects.append(Sign(t.data["name"], t.data.get("region"),
                              summary_version(petition_summary(t))))
        t.data = {}
        return ask_updates(t)
    if answer is Answer.NO:
        t.answered = True
        t.data = {}
        t.say("not_signed")
        return show_menu(t)
    t.say("confirm_retry", choices=_yes_no(t))
    return State.CONFIRM


async def got_updates_choice(t: Turn) -> State:
    """Yes or no to campaign news; then thanks with the count."""
    answer = match_answer(t.text, t.language)
    if answer not in (Answer.YES, Answer.NO):
        t.say("optin_retry", choices=_yes_no(t))
        return State.ASK_UPDATES
    t.answered = True
    t.effects.append(SetUpdates(answer is Answer.YES))
    key = "thanks_news" if answer is Answer.YES else "thanks_no_news"
    t.say(key, count=await _count(t))
    return State.MENU


async def got_delete_confirmation(t: Turn) -> State:
    """Yes erases everything we hold on the contact; no keeps it."""
    answer = match_answer(t.text, t.language)
    if answer is Answer.YES:
        t.answered = True
        t.effects.append(Erase())
        t.say("deleted")
        t.data = {}
        return State.NEW
    if answer is Answer.NO:
        t.answered = True
        t.data.pop("return_to", None)
        t.say("delete_kept")
        return State.MENU if t.contact.stopped else show_menu(t)
    t.say("confirm_delete", choices=_yes_no(t))
    return State.CONFIRM_DELETE


STEPS: dict[State, Step] = {
    State.NEW: welcome,
    State.CHOOSE_LANGUAGE: choose_language,
    State.MENU: in_menu,
    State.ASK_NAME: got_name,
    State.ASK_REGION: got_region,
    State.CONFIRM: got_confirmation,
    State.ASK_UPDATES: got_updates_choice,
    State.CONFIRM_DELETE: got_delete_confirmation,
}


# --- keywords: work at every step ---------------------------------------------------------

async def on_stop(t: Turn) -> State:
    """Opt out of everything; one confirmation."""
    if not t.contact.stopped:
        t.effects.append(Stop())
        t.say("stopped")
    return State(t.state) if t.state != State.CONFIRM_DELETE else State.MENU


async def on_start(t: Turn) -> State:
    """Lift a stop and show the menu; for a contact not stopped it is MENU."""
    if t.contact.stopped:
        t.effects.append(Start())
        t.say("started")
    return show_menu(t)


async def on_help(t: Turn) -> State:
    """Who runs this, what it keeps, how to stop; the current step goes on (a new contact
    stays new: their next message gets the welcome and the language choice)."""
    t.say("help")
    return State(t.state)


async def on_sign(t: Turn) -> State:
    """Start signing, unless this contact signed already."""
    if t.contact.signed:
        t.say("already_signed", count=await _count(t))
        return State.MENU
    t.data = {}
    return ask_name(t)


async def on_language(t: Turn) -> State:
    """Choose the language again; a signing step is asked again after the choice."""
    if t.state in RESUMABLE:
        t.data["resume"] = str(t.state)
    t.say("language_prompt", choices=_language_choices(t), numbered=True)
    return State.CHOOSE_LANGUAGE


async def on_menu(t: Turn) -> State:
    """What you can do here."""
    t.data = {}
    return show_menu(t)


async def on_delete(t: Turn) -> State:
    """Ask before erasing."""
    t.say("confirm_delete", choices=_yes_no(t))
    return State.CONFIRM_DELETE


KEYWORD_HANDLERS: dict[Keyword, Step] = {
    Keyword.STOP: on_stop,
    Keyword.START: on_start,
    Keyword.HELP: on_help,
    Keyword.SIGN: on_sign,
    Keyword.LANGUAGE: on_language,
    Keyword.MENU: on_menu,
    Keyword.DELETE: on_delete,
}


# --- the turn -----------------------------------------------------------------------------

def _is_restart_yes(t: Turn) -> bool:
    """`YES` (a word, not `1`) from a stopped contact lifts the stop, as Twilio's START does."""
    word = fold(t.text)
    return not word.isdigit() and match_answer(t.text, t.language) is Answer.YES


async def decide(t: Turn) -> None:
    """Decide one turn: set `t.state`, `t.language`, `t.data`, `t.replies`, `t.effects`."""
    await _decide(t)
    if t.state != State.CHOOSE_LANGUAGE:
        t.data.pop("resume", None)  # a LANGUAGE question left by other means: forget it


async def _decide(t: Turn) -> None:
    state = State(t.state) if t.state in State.__members__.values() else State.NEW
    found = match_keyword(t.text, t.language)

    if t.contact.stopped:
        # A stopped contact hears nothing until START, except what they ask to erase.
        if found and found[0] is Keyword.START or _is_restart_yes(t):
            t.keyword = Keyword.START
            t.state = await on_start(t)
        elif found and found[0] is Keyword.DELETE:
            t.keyword = Keyword.DELETE
            t.state = await on_delete(t)
        elif state is State.CONFIRM_DELETE and not found:
            t.state = await got_delete_confirmation(t)
        elif found:
            t.keyword = found[0]
        return

    if t.text.startswith(LANGUAGE_BUTTON) and t.text[len(LANGUAGE_BUTTON):] in t.languages:
        # A language button, from this message or an old one: switch and go on where we were
        # (at the language question: where the contact was when they asked for LANGUAGE).
        t.language = t.text[len(LANGUAGE_BUTTON):]
        resume = t.data.pop("resume", None)
        if state is State.CHOOSE_LANGUAGE and resume in RESUMABLE:
            state = State(resume)
        t.state = reprompt(t, state)
        return

    if found is not None and found[0] is Keyword.START and state is State.NEW:
        found = None  # START (Telegram's /start) from a new contact: the welcome, not the menu

    if found is not None:
        keyword, word_lang = found
        if t.language is None and word_lang in t.languages and word_lang != "en":
            t.language = word_lang  # `AYUDA` as a first message: answer in Spanish
        t.keyword = keyword
        t.state = await KEYWORD_HANDLERS[keyword](t)
        return

    if t.media and not t.text.strip() and state is not State.NEW:
        t.say("text_only")  # a photo or voice note: we only read text, and keep none of it
        return

    t.state = await STEPS[state](t)
