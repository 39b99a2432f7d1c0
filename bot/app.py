"""The pieces of a running bot, opened and closed together."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from bot.campaign import Campaign, load_campaign
from bot.config import Settings
from bot.engine import Engine
from bot.i18n import Catalogs
from bot.store import Store


@dataclass
class Bot:
    settings: Settings
    campaign: Campaign
    catalogs: Catalogs
    store: Store
    engine: Engine
    telegram: Any = None  # the running TelegramChannel inside `serve`, else None
    whatsapp: Any = None  # WhatsApp's reply lane for buttons (WhatsAppReplies) inside `serve`


def load_texts(settings: Settings) -> tuple[Campaign, Catalogs]:
    campaign = load_campaign(settings.campaign_file)
    return campaign, Catalogs.load(campaign)


@asynccontextmanager
async def open_bot(settings: Settings) -> AsyncIterator[Bot]:
    campaign, catalogs = load_texts(settings)
    async with Store(settings.db_path) as store:
        engine = Engine(store, campaign, catalogs, organizers=settings.organizers)
        yield Bot(settings, campaign, catalogs, store, engine)
