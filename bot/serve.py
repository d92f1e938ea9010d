"""`qwenfix serve`: the receiver's entry point, where its concrete parts are built."""

from __future__ import annotations

import gc
import sys

import redis.asyncio as aioredis
import uvicorn
from fastapi import FastAPI

from bot.contract.db import make_engine, migrate
from bot.contract.store import JobStore
from bot.receiver.app import Receiver, create_app
from bot.receiver.enqueue import RedisJobQueue
from bot.receiver.ledger import DeliveryLedger
from bot.receiver.metrics import ReceiverMetrics
from bot.receiver.redis_batch import AutoPipeline
from bot.settings import BotSettings, load_bot_settings


def build_receiver(settings: BotSettings) -> Receiver:
    engine = make_engine(settings.database_url)
    if settings.migrate_on_start:
        migrate(engine)
    # One client and one pipeline for dedup and queueing: a delivery's commands travel
    # with those of every other delivery in flight.
    client = aioredis.Redis.from_url(settings.redis_url, socket_connect_timeout=2)
    redis = AutoPipeline(client)
    return Receiver(
        settings=settings,
        store=JobStore(engine),
        ledger=DeliveryLedger(
            client, settings.dedup_ttl_s, redis, claim_ttl_s=settings.claim_ttl_s
        ),
        queue=RedisJobQueue(client, settings.quick_queue, redis),
        metrics=ReceiverMetrics(),
    )


def _settle() -> None:
    """Everything built so far lives as long as the process: keep the collector from
    walking it again and again (its full passes were the receiver's worst tail latency)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)
    # The job writer's thread needs the GIL for moments between SQLite calls; with the
    # default 5 ms switch interval it waited behind the event loop for each of them.
    sys.setswitchinterval(0.0005)


def app_from_environment() -> FastAPI:
    """The receiver of one uvicorn worker process (`qwenfix serve --workers N`)."""
    app = create_app(build_receiver(load_bot_settings()))
    _settle()
    return app


def serve(settings: BotSettings, host: str, port: int, workers: int = 1) -> None:
    if workers > 1:  # each process builds its own receiver from the same environment
        uvicorn.run(
            "bot.serve:app_from_environment",
            factory=True,
            workers=workers,
            host=host,
            port=port,
            log_level="info",
            access_log=False,
            log_config=None,
        )
        return
    app = create_app(build_receiver(settings))
    _settle()
    # log_config=None: uvicorn's lines go through qwenfix's logging (text or JSON).
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=False, log_config=None)
