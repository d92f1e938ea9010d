"""Which failures are worth retrying, and after how long: small and explicit.

Transient: GitHub 5xx and rate limits (honouring their Retry-After), the network, the
broker and the database being briefly away. Anything else is a real failure and is not
retried: an agent run is never retried blindly.
"""

from __future__ import annotations

from githubkit.exception import RateLimitExceeded, RequestError, RequestFailed, RequestTimeout
from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeout
from sqlalchemy.exc import OperationalError as DatabaseError

MAX_DELAY_S = 600.0


def transient_delay(exc: BaseException, attempt: int) -> float | None:
    """Seconds to wait before retrying after `exc`, or None when it is not transient."""
    backoff: float = min(2.0 * 2**attempt, MAX_DELAY_S)
    if isinstance(exc, RateLimitExceeded):
        return float(min(max(exc.retry_after.total_seconds(), 1.0), MAX_DELAY_S))
    if isinstance(exc, RequestFailed):
        return backoff if exc.response.status_code >= 500 else None
    if isinstance(
        exc,
        (
            RequestError,
            RequestTimeout,
            BrokerError,
            RedisConnectionError,
            RedisTimeout,
            DatabaseError,
        ),
    ):
        return backoff
    return None
