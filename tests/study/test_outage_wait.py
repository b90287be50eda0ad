"""The wait for a store that stops answering (study/outage_wait.py), on a clock of the test's own."""

from smcl_tune.study import outage_wait
from smcl_tune.study.outage_wait import Outage, wait_through


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


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
