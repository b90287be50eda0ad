"""A fused group's trainer (study/fused_groups.py), without Ray: the members' calls as the trial
actors make them, one report each per call."""

import threading
import weakref

import pytest

from smcl_tune.config import trial_config_from_dict
from smcl_tune.data import splits
from smcl_tune.study.fused_groups import GroupTrainer
from smcl_tune.trial.fused.group_run import FusedGroup

pytestmark = pytest.mark.slow


def _reports_by_member(trainer: GroupTrainer, tokens: list[int]) -> list[list[tuple[int, bool]]]:
    """Each member's calls in turn until all are done (a group's next epoch waits for every
    member's call after its last report): per member, its reports as (epoch, done)."""
    reports: list[list[tuple[int, bool]]] = [[] for _ in tokens]
    for _ in range(200):
        for member, token in enumerate(tokens):
            if reports[member] and reports[member][-1][1]:
                continue
            report = trainer.next_report(token)
            assert report is None or "error" not in report, report
            if report is not None:
                reports[member].append((report["metrics"]["epoch"], report["done"]))
                if report["done"]:
                    trainer.leave(token)
        if all(mine and mine[-1][1] for mine in reports):
            break
    return reports


def _first_report(trainer: GroupTrainer, token: int) -> dict | None:
    """The member's first report within 100 calls (each waits up to fused_groups.POLL_S)."""
    for _ in range(100):
        report = trainer.next_report(token)
        if report is not None:
            return report
    return None


def _held_data_read(monkeypatch) -> tuple[threading.Event, threading.Event]:
    """The group's data read waits for the second event; the first says it has begun."""
    reading, read = threading.Event(), threading.Event()
    build = splits.build_trial_data

    def slow_read(config):
        reading.set()
        assert read.wait(60)
        return build(config)

    monkeypatch.setattr(splits, "build_trial_data", slow_read)
    return reading, read


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
    reading, read = _held_data_read(monkeypatch)
    trained = []  # per group epoch, its members as (slot, epoch)
    train_epoch = FusedGroup.train_epoch

    def recorded(group, training):
        trained.append([(member.index, member.epoch) for member in training])
        return train_epoch(group, training)

    monkeypatch.setattr(FusedGroup, "train_epoch", recorded)
    trainer = GroupTrainer(3, 1, None, 0.0, "g0")
    configs = _member_configs(tiny_config, 3)
    tokens = [trainer.join(configs[0], str(tmp_path / "m0"), None, None)]
    assert reading.wait(60)
    tokens += [
        trainer.join(config, str(tmp_path / f"m{seed}"), None, None) for seed, config in enumerate(configs[1:], 1)
    ]
    read.set()
    assert _reports_by_member(trainer, tokens) == [[(0, False), (1, True)]] * 3
    assert trained == [[(0, 0), (1, 0), (2, 0)], [(0, 1), (1, 1), (2, 1)]]


def test_a_group_that_fails_tells_its_members_why_and_lets_go_of_its_memory(tmp_path, tiny_config, monkeypatch):
    """An out-of-memory error in a step breaks the group: each member's call says why (its trial
    fails and is retried in a new group, maybe on the same GPU), and the group's network, optimizer
    state and data are let go at once, not when the study ends."""
    held = []  # the group, and each member's own network

    def out_of_memory(group, training):
        held.extend([weakref.ref(group), *(weakref.ref(member.parts.network) for member in training)])
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(FusedGroup, "train_epoch", out_of_memory)
    _, read = _held_data_read(monkeypatch)  # both members join before the group's first epoch
    trainer = GroupTrainer(2, 1, None, 0.0, "g0")
    tokens = [
        trainer.join(config, str(tmp_path / f"m{seed}"), None, None)
        for seed, config in enumerate(_member_configs(tiny_config, 2))
    ]
    read.set()
    for token in tokens:
        report = _first_report(trainer, token)
        assert report is not None and "CUDA out of memory" in report["error"], report
        # let go of before the members are told: no collection here
        assert len(held) == 3 and all(ref() is None for ref in held), "the failed group's memory is still held"
    assert not trainer.reserve(), "a failed group takes no more trials"


def test_a_group_that_cannot_give_its_memory_back_still_tells_its_members(tmp_path, tiny_config, monkeypatch):
    """After a sticky CUDA error (an illegal memory access), freeing memory fails too: the members
    are told all the same, rather than waiting for reports that never come."""

    def illegal_access(group, training):
        raise RuntimeError("CUDA error: an illegal memory access was encountered")

    def cannot_free(trainer):
        raise RuntimeError("CUDA error: an illegal memory access was encountered")

    monkeypatch.setattr(FusedGroup, "train_epoch", illegal_access)
    monkeypatch.setattr(GroupTrainer, "_let_go", cannot_free)
    trainer = GroupTrainer(1, 1, None, 0.0, "g0")
    token = trainer.join(_member_configs(tiny_config, 1)[0], str(tmp_path / "m0"), None, None)
    report = _first_report(trainer, token)
    assert report is not None and "illegal memory access" in report["error"], report


def test_a_group_sets_its_threads_from_the_members_training_each_epoch(tmp_path, tiny_config, monkeypatch):
    """Without training.num_threads, a group of two members that each hold one CPU trains with two
    threads, and with one once the shorter member has ended; with it, the trials' own value."""
    import torch

    threads, per_epoch = [], []  # torch.set_num_threads's calls; the threads set when each epoch trains
    monkeypatch.setattr(torch, "set_num_threads", threads.append)  # the test process keeps its own
    train_epoch = FusedGroup.train_epoch

    def recorded(group, training):
        per_epoch.append(threads[-1])
        return train_epoch(group, training)

    monkeypatch.setattr(FusedGroup, "train_epoch", recorded)
    _, read = _held_data_read(monkeypatch)  # both members join before the group's first epoch
    trainer = GroupTrainer(2, 1.0, None, 0.0, "g0")
    configs = [
        trial_config_from_dict(
            tiny_config(epochs=epochs, num_threads=None, max_steps_per_epoch=1, seed=seed)
        ).model_dump(mode="json")
        for seed, epochs in enumerate([1, 2])
    ]
    tokens = [trainer.join(config, str(tmp_path / f"m{seed}"), None, None) for seed, config in enumerate(configs)]
    read.set()
    assert _reports_by_member(trainer, tokens) == [[(0, True)], [(0, False), (1, True)]]
    assert per_epoch == [2, 1]

    per_epoch.clear()
    trainer = GroupTrainer(2, 1.0, None, 0.0, "g1")
    token = trainer.join(_member_configs(tiny_config, 1)[0], str(tmp_path / "own"), None, None)  # num_threads 1
    assert _reports_by_member(trainer, [token]) == [[(0, False), (1, True)]]
    assert per_epoch == [1, 1]
