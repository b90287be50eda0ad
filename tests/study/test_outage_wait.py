"""The wait for a store that stops answering (study/outage_wait.py), on a clock of the test's own:
the outage is counted from the start of the first call that failed, whose client may have spent
seconds retrying inside it."""

import pytest

from smcl_tune.study import outage_wait
from smcl_tune.study.outage_wait import Outage, StoreDown, wait_through


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_a_clients_own_retries_inside_a_failed_call_count_towards_the_timeout(monkeypatch):
    clock = _Clock()
    monkeypatch.setattr(outage_wait, "time", clock)
    calls = []

    def read():  # pyarrow's S3 read: about 6 s of its own retries, then the error
        calls.append(clock.now)
        clock.now += 6
        raise ConnectionError("connection refused")

    outage = Outage(
        "the store s3://bucket", lambda error: isinstance(error, ConnectionError), 8, "storage_outage_timeout_s"
    )
    with pytest.raises(StoreDown) as stopped:
        wait_through(outage, read, "a test read")
    # from 0 s: the first call fails at 6 s, a pause to 7 s, the second fails at 13 s, past the 8 s
    # (counted from the first failure, at 6 s, a third call would have been made and the stop come at 20 s)
    assert calls == [0.0, 7.0] and clock.now == 13.0
    assert str(stopped.value).startswith(
        "the store s3://bucket has not answered for 13 s (storage_outage_timeout_s: 8)"
    )


def test_a_store_that_answers_again_within_the_timeout_is_waited_for(monkeypatch):
    clock = _Clock()
    monkeypatch.setattr(outage_wait, "time", clock)
    answers = iter([ConnectionError("down"), ConnectionError("down"), "read"])

    def read():
        clock.now += 1
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    outage = Outage(
        "the store s3://bucket", lambda error: isinstance(error, ConnectionError), 8, "storage_outage_timeout_s"
    )
    assert wait_through(outage, read, "a test read") == "read"
