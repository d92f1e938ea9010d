"""`qwenfix serve`: the receiver's entry point, where its concrete parts are built."""

from __future__ import annotations

import uvicorn

from bot.app import Receiver, create_app
from bot.db import make_engine, migrate
from bot.jobs import JobStore
from bot.ledger import DeliveryLedger
from bot.metrics import ReceiverMetrics
from bot.queue import RedisJobQueue
from bot.settings import BotSettings


def build_receiver(settings: BotSettings) -> Receiver:
    engine = make_engine(settings.database_url)
    migrate(engine)
    return Receiver(
        settings=settings,
        store=JobStore(engine),
        ledger=DeliveryLedger.from_url(settings.redis_url, settings.dedup_ttl_s),
        queue=RedisJobQueue.from_url(settings.redis_url, settings.quick_queue),
        metrics=ReceiverMetrics(),
    )


def serve(settings: BotSettings, host: str, port: int) -> None:
    app = create_app(build_receiver(settings))
    # log_config=None: uvicorn's lines go through qwenfix's logging (text or JSON).
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=False,
                log_config=None)
