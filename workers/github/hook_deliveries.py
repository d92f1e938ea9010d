"""The App's webhook deliveries, as GitHub lists them (`GET /app/hook/deliveries`, App
JWT), and asking for one again (`POST /app/hook/deliveries/{id}/attempts`).

Each attempt is listed on its own, newest first; all attempts of one event share its guid
(the X-GitHub-Delivery header). The list is paged by an opaque cursor that only the Link
header's next URL carries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from githubkit import AppAuthStrategy, GitHub
from githubkit.response import Response
from githubkit.utils import UNSET

PER_PAGE = 100  # GitHub's most


@dataclass(frozen=True)
class Attempt:
    """One attempt at delivering one event."""

    id: int
    guid: str
    delivered_at: datetime
    status_code: int
    """0 when no answer came (timeout, refused connection)."""
    event: str
    action: str | None
    redelivery: bool

    @property
    def succeeded(self) -> bool:
        return 200 <= self.status_code < 300


@dataclass
class Listing:
    attempts: list[Attempt] = field(default_factory=list)
    pages: int = 0
    complete: bool = True
    """False when `max_pages` ran out before the listing reached `since`."""


def next_cursor(response: Response[Any, Any]) -> str | None:
    """The cursor of the next page, from the Link header; None on the last page."""
    following = response.raw_response.links.get("next")
    if following is None or not following.get("url"):
        return None
    cursor = httpx.URL(following["url"]).params.get("cursor")
    return cursor or None


def recent_attempts(github: GitHub[AppAuthStrategy], since: datetime, max_pages: int) -> Listing:
    """Every attempt delivered at or after `since`, newest first, paging no further than
    needed (the list is newest first: the first attempt older than `since` ends it).
    Raises githubkit's errors: the caller decides what GitHub being away means."""
    listing = Listing()
    cursor: str | None = None
    while True:
        if listing.pages == max_pages:
            listing.complete = False
            return listing
        response = github.rest.apps.list_webhook_deliveries(
            per_page=PER_PAGE, cursor=UNSET if cursor is None else cursor
        )
        listing.pages += 1
        for item in response.parsed_data:
            delivered_at = _utc(item.delivered_at)
            if delivered_at < since:
                return listing
            listing.attempts.append(
                Attempt(
                    id=item.id,
                    guid=item.guid,
                    delivered_at=delivered_at,
                    status_code=item.status_code,
                    event=item.event,
                    action=item.action,
                    redelivery=item.redelivery,
                )
            )
        cursor = next_cursor(response)
        if cursor is None:
            return listing


def redeliver(github: GitHub[AppAuthStrategy], attempt_id: int) -> None:
    """Ask GitHub to deliver the attempt's event again (it answers 202 and delivers later,
    under the same guid). Raises githubkit's errors."""
    github.rest.apps.redeliver_webhook_delivery(attempt_id)


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
