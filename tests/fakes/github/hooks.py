"""The fake GitHub's App webhook: it sends deliveries, signed as GitHub signs them, to the
receiver it is configured with, and keeps every attempt as GitHub's delivery log does
(`GET /app/hook/deliveries`), so that an attempt can be redelivered with the same guid
and body (`POST /app/hook/deliveries/{id}/attempts`)."""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx

from bot.receiver.signature import sign

# GitHub's delivery ids are large; these never collide with the fake's other ids.
FIRST_ID = 12_000_000_000


def github_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class WebhookLog:
    """Thread-safe: deliveries go out from test threads and from the app's own threads
    (redeliveries, after their 202)."""

    def __init__(self, timeout_s: float = 10.0) -> None:
        self.url: str | None = None
        self.secret = ""
        self.timeout_s = timeout_s
        self.attempts: list[dict[str, Any]] = []
        """Every attempt, oldest first: the fields of GitHub's hook-delivery-item, and
        `duplicate` (the receiver answered that it had the delivery already)."""
        self._bodies: dict[str, tuple[str, bytes]] = {}  # guid -> (event, raw body)
        self._ids = itertools.count(FIRST_ID)
        self._pending = 0
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)

    def configure(self, url: str, secret: str) -> None:
        """Where deliveries go (the receiver's /webhook) and the secret they are signed
        with."""
        self.url, self.secret = url, secret

    def send(self, event: str, payload: dict[str, Any], guid: str | None = None) -> dict[str, Any]:
        """Deliver a new event (a new guid unless given): its recorded attempt."""
        guid = guid or str(uuid.uuid4())
        body = json.dumps(payload).encode()
        with self._lock:
            self._bodies[guid] = (event, body)
        return self._attempt(guid, event, body, redelivery=False)

    def add(
        self,
        event: str,
        payload: dict[str, Any],
        *,
        status_code: int,
        delivered_at: datetime,
        guid: str | None = None,
        redelivery: bool = False,
    ) -> dict[str, Any]:
        """An attempt made in the past, as if it had been sent then: for arranging the log
        (old deliveries, attempts already answered). Redeliverable like any other."""
        guid = guid or str(uuid.uuid4())
        with self._lock:
            self._bodies.setdefault(guid, (event, json.dumps(payload).encode()))
            return self._record(
                guid,
                event,
                payload,
                redelivery=redelivery,
                status_code=status_code,
                status=_status(status_code),
                duration=0.01,
                duplicate=False,
                at=delivered_at,
            )

    def newest_first(self) -> list[dict[str, Any]]:
        with self._lock:
            return sorted(self.attempts, key=lambda a: (a["at"], a["id"]), reverse=True)

    def of(self, guid: str) -> list[dict[str, Any]]:
        with self._lock:
            return [a for a in self.attempts if a["guid"] == guid]

    def guid_of(self, attempt_id: int) -> str:
        with self._lock:
            return str(next(a["guid"] for a in self.attempts if a["id"] == attempt_id))

    def start_redelivery(self, attempt_id: int) -> str | None:
        """The guid of the attempt to deliver again, now counted as pending; None when
        there is no such attempt."""
        with self._lock:
            found = next((a for a in self.attempts if a["id"] == attempt_id), None)
            if found is None:
                return None
            self._pending += 1
            return str(found["guid"])

    def redeliver(self, guid: str) -> None:
        """The delivery again, as GitHub makes it after answering 202: same guid, same
        body, a new attempt id."""
        try:
            with self._lock:
                event, body = self._bodies[guid]
            self._attempt(guid, event, body, redelivery=True)
        finally:
            with self._idle:
                self._pending -= 1
                self._idle.notify_all()

    def settle(self, timeout_s: float = 30.0) -> None:
        """Wait until every redelivery asked for has been made."""
        with self._idle:
            if not self._idle.wait_for(lambda: self._pending == 0, timeout_s):
                raise TimeoutError(f"{self._pending} redelivery(ies) still pending")

    def _attempt(self, guid: str, event: str, body: bytes, *, redelivery: bool) -> dict[str, Any]:
        if self.url is None:
            raise RuntimeError("the fake's webhook is not configured (configure_webhook)")
        started = time.monotonic()
        duplicate = False
        try:
            answer = httpx.post(
                self.url,
                content=body,
                timeout=self.timeout_s,
                headers={
                    "X-GitHub-Event": event,
                    "X-GitHub-Delivery": guid,
                    "X-Hub-Signature-256": sign(self.secret, body),
                    "Content-Type": "application/json",
                    "User-Agent": "GitHub-Hookshot/fake",
                },
            )
            code, status = answer.status_code, _status(answer.status_code)
            duplicate = _said_duplicate(answer)
        except httpx.TimeoutException:
            code, status = 0, "timed out"
        except httpx.TransportError:
            code, status = 0, "failed to connect"
        with self._lock:
            return self._record(
                guid,
                event,
                json.loads(body),
                redelivery=redelivery,
                status_code=code,
                status=status,
                duration=round(time.monotonic() - started, 3),
                duplicate=duplicate,
                at=datetime.now(UTC),
            )

    def _record(
        self,
        guid: str,
        event: str,
        payload: dict[str, Any],
        *,
        redelivery: bool,
        status_code: int,
        status: str,
        duration: float,
        duplicate: bool,
        at: datetime,
    ) -> dict[str, Any]:
        installation = payload.get("installation") or {}
        repository = payload.get("repository") or {}
        attempt = {
            "id": next(self._ids),
            "guid": guid,
            "at": at,
            "delivered_at": github_time(at),
            "redelivery": redelivery,
            "duplicate": duplicate,
            "duration": duration,
            "status": status,
            "status_code": status_code,
            "event": event,
            "action": payload.get("action"),
            "installation_id": installation.get("id"),
            "repository_id": repository.get("id"),
        }
        self.attempts.append(attempt)
        return attempt


def delivery_item(attempt: dict[str, Any]) -> dict[str, Any]:
    """GitHub's hook-delivery-item for an attempt."""
    return {
        "id": attempt["id"],
        "guid": attempt["guid"],
        "delivered_at": attempt["delivered_at"],
        "redelivery": attempt["redelivery"],
        "duration": attempt["duration"],
        "status": attempt["status"],
        "status_code": attempt["status_code"],
        "event": attempt["event"],
        "action": attempt["action"],
        "installation_id": attempt["installation_id"],
        "repository_id": attempt["repository_id"],
        "throttled_at": None,
    }


def _status(code: int) -> str:
    """What GitHub's log says of an answer."""
    if code == 0:
        return "timed out"
    return "OK" if 200 <= code < 300 else f"Invalid HTTP Response: {code}"


def _said_duplicate(answer: httpx.Response) -> bool:
    try:
        body = answer.json()
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("status") == "duplicate"
