from __future__ import annotations

from tests.conftest import fresh_redis
from workers.runtime.locks import TargetLock


def test_one_job_per_target_and_the_same_job_may_take_its_lock_back() -> None:
    _, client = fresh_redis(9)
    with TargetLock(client, "o/r#7", "job-1", 60) as first:
        assert first.held
        with TargetLock(client, "o/r#7", "job-2", 60) as second:
            assert not second.held and second.holder() == "job-1"
        with TargetLock(client, "o/r#7", "job-1", 60) as again:  # a redelivery of job-1
            assert again.held
        with TargetLock(client, "o/r#8", "job-2", 60) as other:
            assert other.held
    assert client.get("qwenfix:lock:o/r#7") is None


def test_an_expired_lock_taken_by_another_job_is_not_released_by_the_first() -> None:
    _, client = fresh_redis(9)
    lock = TargetLock(client, "o/r#1", "job-1", 60).__enter__()
    client.set("qwenfix:lock:o/r#1", "job-2")  # job-1's lock expired; job-2 took it
    lock.__exit__(None, None, None)
    assert client.get("qwenfix:lock:o/r#1") == b"job-2"
