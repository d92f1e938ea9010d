"""`qwenfix migrate`: the schema brought to the newest migration, once, by one process
(the deployment's migrate job) before the receiver and the workers start; or, with
--check, whether it is there (what their init containers wait for)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError

from bot.contract.db import make_engine, migrate, schema_revisions


@dataclass(frozen=True)
class Schema:
    current: str | None
    head: str | None

    @property
    def at_head(self) -> bool:
        return self.current == self.head


class MigrateError(Exception):
    """The database could not be reached or migrated; the message says which."""


def schema(url: str) -> Schema:
    engine = make_engine(url)
    try:
        return Schema(*schema_revisions(engine))
    except SQLAlchemyError as exc:
        raise MigrateError(f"cannot read the schema of {_safe(url)}: {exc}") from exc
    finally:
        engine.dispose()


def upgrade(url: str) -> Schema:
    engine = make_engine(url)
    try:
        migrate(engine)
        return Schema(*schema_revisions(engine))
    except SQLAlchemyError as exc:
        raise MigrateError(f"cannot migrate {_safe(url)}: {exc}") from exc
    finally:
        engine.dispose()


def wait_for_head(url: str, wait_s: float, every_s: float = 2.0) -> Schema:
    """The schema once it is at head, or as it is when `wait_s` runs out. A database not
    up yet counts as not yet migrated."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            found = schema(url)
        except MigrateError:
            if time.monotonic() >= deadline:
                raise
        else:
            if found.at_head or time.monotonic() >= deadline:
                return found
        time.sleep(every_s)


def _safe(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
