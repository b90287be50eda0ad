"""A fused group's trainer (study/fused_groups.py), without Ray: the members' calls as the trial
actors make them, one report each per call."""

import gc
import threading
import weakref

import pytest

from smcl_tune.config import trial_config_from_dict
from smcl_tune.data import splits
from smcl_tune.study.fused_groups import GroupTrainer
from smcl_tune.trial.fused.group_run import FusedGroup

pytestmark = pytest.mark.slow


def _reports_by_round(trainer: GroupTrainer, tokens: list[int]) -> list[list[tuple[int, int, bool]]]:
    """Each member's calls in turn until all are done: per round, each report read as (member,
    epoch, done). A group's next epoch waits for every member's call after its last report."""
    rounds, done = [], set()
    while len(done) < len(tokens) and len(rounds) < 50:
        read = []
        for member, token in enumerate(tokens):
            if member in done:
                continue
            report = trainer.next_report(token)
            assert report is None or "error" not in report, report
            if report is not None:
                read.append((member, report["metrics"]["epoch"], report["done"]))
                if report["done"]:
                    done.add(member)
                    trainer.leave(token)
        rounds.append(read)
    return [read for read in rounds if read]


def _member_configs(tiny_config, count: int) -> list[dict]:
    return [
        trial_config_from_dict(tiny_config(epochs=2, num_threads=1, max_steps_per_epoch=2, seed=seed)).model_dump(
            mode="json"
        )
        for seed in range(count)
    ]


def test_trials_that_join_while_the_group_reads_its_data_train_from_its_first_epoch(tmp_path, tiny_config, monkeypatch):
    """The first member starts the group, which reads the data; the trials whose actors start
    meanwhile (Ray Tune starts them one after another) join that first epoch, so all end together
    (before, they waited for the next one and stayed an epoch behind to the end)."""
    reading, read = threading.Event(), threading.Event()
    build = splits.build_trial_data

    def slow_read(config):
        reading.set()
        assert read.wait(60)
        return build(config)

    monkeypatch.setattr(splits, "build_trial_data", slow_read)
    trainer = GroupTrainer(3, 1, None, 0.0, "g0")
    configs = _member_configs(tiny_config, 3)
    tokens = [trainer.join(configs[0], str(tmp_path / "m0"), None, None)]
    assert reading.wait(60)
    tokens += [
        trainer.join(config, str(tmp_path / f"m{seed}"), None, None) for seed, config in enumerate(configs[1:], 1)
    ]
    read.set()
    assert _reports_by_round(trainer, tokens) == [
        [(0, 0, False), (1, 0, False), (2, 0, False)],
        [(0, 1, True), (1, 1, True), (2, 1, True)],
    ]


def test_a_group_that_fails_tells_its_members_why_and_lets_go_of_its_memory(tmp_path, tiny_config, monkeypatch):
    """An out-of-memory error in a step breaks the group: each member's call says why (its trial
    fails and is retried in a new group, maybe on the same GPU), and the group's network, optimizer
    state and data are let go at once, not when the study ends."""
    groups = []

    def out_of_memory(group, training):
        groups.append(weakref.ref(group))
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(FusedGroup, "train_epoch", out_of_memory)
    trainer = GroupTrainer(2, 1, None, 0.0, "g0")
    tokens = [
        trainer.join(config, str(tmp_path / f"m{seed}"), None, None)
        for seed, config in enumerate(_member_configs(tiny_config, 2))
    ]
    for token in tokens:
        report = None
        for _ in range(100):
            report = report or trainer.next_report(token)
        assert report is not None and "CUDA out of memory" in report["error"], report
    gc.collect()
    assert len(groups) == 1 and groups[0]() is None, "the broken group is still held"
