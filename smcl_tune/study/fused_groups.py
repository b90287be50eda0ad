"""Fused trials in a study (`resources.fuse`): each trial stays a Ray Tune trial of its own (its
Optuna trial, its MLflow run, its ASHA decisions, its checkpoint and its resume, exactly as
unfused), holding 1/fuse of the study's CPU and GPU share per group. Its training runs in a group
worker: a Ray actor on the trial's node, which trains up to `fuse` trials of one fusible shape as
one stacked model (smcl_tune/trial/fused/). The trial relays each epoch's report to Ray Tune.

A trial asks the study's GroupDirectory (an actor the driver owns: it dies with the driver) for a
group of its shape, node and GPU with a free slot; the directory starts one when none has room.
Members join and leave between epochs: one that ends, is stopped by the scheduler, fails or dies
frees its slot, and the next trial the search samples takes it (continuous batching of trials).
A group starts its next epoch once every member has relayed its last report (Ray Tune has copied
that checkpoint), so a member's files reach its run before the next epoch replaces them.

Nothing of the hand-out needs saving: a killed driver's trials are restored by Ray Tune from their
own checkpoints and join new groups, each member at its own epoch.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import threading
import time
import traceback
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import RayActorError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from smcl_tune.errors import DataSourceError
from smcl_tune.results import FUSED_GROUP
from smcl_tune.study.group_threads import group_threads
from smcl_tune.study.outage_wait import Outage

log = logging.getLogger(__name__)

POLL_S = 0.5  # a member's wait for its next report, per call (it checks for a stop in between)
RESERVATION_S = 120.0  # a slot promised to a trial that never joins (it died on the way) is free again after this
ACK_TIMEOUT_S = 600.0  # a live member that relays nothing for this long is dropped (its trial fails, and is retried)
ACK_MARGIN_S = 60.0  # beyond a member's wait for its object store (storage_outage_timeout_s): that is not silence


class FusedGroupError(RuntimeError):
    """The group worker failed; the member's trial fails with it (Ray Tune retries it from its checkpoint)."""


@ray.remote(num_cpus=0)
class GroupDirectory:
    """The study's groups by shape, node and GPU."""

    def __init__(
        self, size: int, cpus_per_member: float, gpu_share: float, ack_timeout_s: float = ACK_TIMEOUT_S
    ) -> None:
        self.size, self.cpus_per_member, self.gpu_share = size, cpus_per_member, gpu_share
        self.ack_timeout_s = ack_timeout_s
        self.groups: dict[str, list] = {}
        self.started = 0  # groups started: their labels g0, g1, ...

    def place(self, shape: str, node_id: str, gpu_ids: list[str]):
        """A group of this shape on this node and GPU with a slot reserved for the caller."""
        key = json.dumps([shape, node_id, sorted(gpu_ids)])
        groups = self.groups.setdefault(key, [])
        for group in groups:
            try:
                if ray.get(group.reserve.remote()):
                    return group
            except RayActorError:
                continue
        devices = ",".join(gpu_ids) if gpu_ids else None
        group = GroupWorker.options(
            num_cpus=0,
            max_concurrency=self.size + 4,
            scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False),
        ).remote(self.size, self.cpus_per_member, devices, self.gpu_share, f"g{self.started}", self.ack_timeout_s)
        self.started += 1
        ray.get(group.reserve.remote())
        groups.append(group)
        log.info("fused group %d of its shape started on node %s (%d slots)", len(groups), node_id[:8], self.size)
        return group


@dataclass
class Seat:
    """A member's place in a group worker: what it joined with, and its reports not yet relayed."""

    token: int
    config: dict[str, Any]
    checkpoint_dir: str
    resume_from: str | None
    owner: Any  # the member's trial actor: a dead one leaves
    member: Any = None
    reports: list[dict[str, Any]] = field(default_factory=list)
    acked: bool = True  # its last report has been relayed
    posted_at: float = 0.0
    left: bool = False
    ended: bool = False
    error: str | None = None


class GroupTrainer:
    """Trains its members' epochs in lockstep in a thread of its own; the members' calls wait on a
    condition for their reports. A study runs it as a Ray actor, GroupWorker."""

    def __init__(
        self,
        size: int,
        cpus_per_member: float,
        cuda_devices: str | None,
        gpu_share: float,
        label: str,
        ack_timeout_s: float = ACK_TIMEOUT_S,
    ) -> None:
        if cuda_devices is not None:  # the GPU of the trials that hold this group's share
            os.environ["CUDA_VISIBLE_DEVICES"] = cuda_devices
        self.size, self.cpus_per_member, self.gpu_share, self.label = size, cpus_per_member, gpu_share, label
        self.threads = 0  # torch's threads in this process, set per epoch (group_threads.py)
        self.ack_timeout_s = ack_timeout_s
        self.reservations: list[float] = []  # when each slot promised to a trial not yet joined was
        self.condition = threading.Condition()
        self.seats: dict[int, Seat] = {}
        self.next_token = 0
        self.thread: threading.Thread | None = None
        self.broken: str | None = None  # why the group failed, once it has let go of its memory
        self.failing = False  # from its failure on: it takes no more trials
        self.data_error: str | None = None  # data no member can read: each member's trial reports it
        self.group = None  # the FusedGroup, from the first member on

    # -- the members' calls ------------------------------------------------------------------------
    def reserve(self) -> bool:
        """A slot for a trial about to join: one that no member holds (an ended member's is free as
        soon as its last report is posted), nor another trial's reservation."""
        with self.condition:
            now = time.monotonic()
            self.reservations = [when for when in self.reservations if now - when < RESERVATION_S]
            members = sum(1 for seat in self.seats.values() if not (seat.left or seat.ended))
            if not self.failing and members + len(self.reservations) < self.size:
                self.reservations.append(now)
                return True
            return False

    def join(self, config: dict[str, Any], checkpoint_dir: str, resume_from: str | None, owner) -> int:
        with self.condition:
            token, self.next_token = self.next_token, self.next_token + 1
            if self.reservations:
                self.reservations.pop(0)
            self.seats[token] = Seat(token, config, checkpoint_dir, resume_from, owner)
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, name="fused-group", daemon=True)
                self.thread.start()
            self.condition.notify_all()
            return token

    def next_report(self, token: int) -> dict[str, Any] | None:
        """The member's next report, or None when none came within POLL_S. Calling it says the
        member's previous report has been relayed."""
        with self.condition:
            seat = self.seats.get(token)
            if seat is None:
                return {"error": "this member left its fused group"}
            seat.acked = True
            self.condition.notify_all()
            self.condition.wait_for(lambda: seat.reports or seat.error or self.broken, POLL_S)
            if self.data_error is not None:
                return {"data_error": self.data_error}
            if seat.error or self.broken:
                return {"error": seat.error or self.broken}
            return seat.reports.pop(0) if seat.reports else None

    def leave(self, token: int) -> None:
        with self.condition:
            seat = self.seats.get(token)
            if seat is not None:
                seat.left = True
                self.condition.notify_all()

    # -- the training thread -----------------------------------------------------------------------
    def _run(self) -> None:
        data_error, broken = None, "the fused group's training ended"
        try:
            self._train()
        except DataSourceError as error:  # not the members' fault: the study stops on it (trial_data_error.py)
            log.error("the fused group cannot read its data: %s", error)
            data_error, broken = str(error), f"the fused group cannot read its data: {error}"
        except BaseException as error:  # every member's trial fails with it, and is retried
            broken = f"the fused group failed: {error!r}\n{traceback.format_exc()}"
            log.error(broken)
        with self.condition:
            self.failing = True  # no more trials reserve a slot here
        try:
            self._let_go()  # before the members hear of it: their retried trials may start a group here
        except BaseException as error:  # after a sticky CUDA error, freeing memory fails too
            log.warning("the failed fused group could not give its memory back: %r", error)
        finally:
            with self.condition:
                self.data_error, self.broken = data_error, broken
                self.condition.notify_all()

    def _let_go(self) -> None:
        """A failed group's device memory back (its stacked and its members' own weights, optimizer
        states, data and graph pools): the actor lives on until the study ends (its members read
        why it failed), and their retried trials start a new group, maybe on the same GPU, where
        that memory would fail it again after an out-of-memory error."""
        import torch

        self.group = None
        with self.condition:
            for seat in self.seats.values():
                seat.member = None  # its own network, optimizer state and the data's device split
        gc.collect()  # the group and its graphs hold each other
        if torch.cuda.is_initialized():
            torch.cuda.empty_cache()

    def _train(self) -> None:
        import torch

        from smcl_tune.config import trial_config_from_dict
        from smcl_tune.data.splits import build_trial_data
        from smcl_tune.study.gpu_share import cap_gpu_memory
        from smcl_tune.trial.checkpoint import resumable_checkpoint
        from smcl_tune.trial.device import resolve_device
        from smcl_tune.trial.fused.group_run import FusedGroup, finish_epoch, finish_trial, new_member

        cap_gpu_memory(self.gpu_share)
        data = device = None
        while True:
            group = self.group
            with self.condition:
                self.condition.wait_for(lambda: self._ready_for_an_epoch(), POLL_S)
                self._drop_leavers(group)  # between epochs: a slot freed now is taken below
                if not self._ready_for_an_epoch():
                    self._drop_dead_owners()
                    continue
                free = self.size if group is None else group.free_slots()
                joining = [seat for seat in self.seats.values() if seat.member is None][:free]
            if data is None and joining:
                # the data first, then the members: trials whose actors Ray starts meanwhile join the
                # first epoch rather than the next, where they would stay one epoch behind to the end
                config = trial_config_from_dict(joining[0].config)
                self._set_threads(len(joining), config.training.num_threads, torch)  # the data's build uses them
                device = resolve_device(config.training.device)
                data = build_trial_data(config.data).to(device)
                continue
            for seat in joining:
                config = trial_config_from_dict(seat.config)
                member = new_member(0, config, data, device, self._poster(seat), Path(seat.checkpoint_dir))
                if group is None:
                    group = self.group = FusedGroup([member], device, size=self.size)
                else:
                    group.admit(member)
                if seat.resume_from is not None:
                    checkpoint = resumable_checkpoint(Path(seat.resume_from), config)
                    if checkpoint is not None:
                        group.restore(member, checkpoint)
                seat.member = member
            if group is None:
                continue
            training = [member for member in group.members if member.training]
            if training:
                self._set_threads(len(training), training[0].config.training.num_threads, torch)
                by_slot = {member.index: member for member in training}
                for index, metrics in group.train_epoch(training).items():
                    finish_epoch(group, by_slot[index], metrics, data)
            with self.condition:
                seats = list(self.seats.values())
            for seat in seats:
                if seat.member is not None and not seat.member.training and not seat.ended:
                    seat.ended = True
                    finish_trial(group, seat.member, data)

    def _set_threads(self, members: int, num_threads: int | None, torch) -> None:
        threads = group_threads(members, self.cpus_per_member, num_threads)
        if threads != self.threads:
            torch.set_num_threads(threads)
            log.info("fused group %s: %d members, %d torch threads", self.label, members, threads)
            self.threads = threads

    def _poster(self, seat: Seat):
        def post(metrics: dict[str, Any], folder: Path | None) -> None:
            with self.condition:
                report = {
                    "metrics": metrics,
                    "checkpoint": None if folder is None else str(folder),
                    "done": seat.ended,
                    "group": f"{self.label}/{seat.member.index}",
                }
                seat.reports.append(report)
                seat.acked, seat.posted_at = False, time.monotonic()
                self.condition.notify_all()

        return post

    def _ready_for_an_epoch(self) -> bool:
        """Every member has relayed its last report, or left; and there is an epoch to train or a
        trial to admit."""
        seats = [seat for seat in self.seats.values() if not seat.left]
        if any(not (seat.acked and not seat.reports) for seat in seats):
            return False
        free = self.size if self.group is None else self.group.free_slots()
        joining = any(seat.member is None for seat in seats) and free > 0
        return joining or any(seat.member is not None and seat.member.training for seat in seats)

    def _drop_dead_owners(self) -> None:
        """Members whose trial actor died (a killed trial), or that relayed nothing for too long, leave."""
        now = time.monotonic()
        for seat in self.seats.values():
            if seat.left or (seat.acked and not seat.reports):
                continue
            if now - seat.posted_at > self.ack_timeout_s:
                seat.left, seat.error = True, f"relayed no report for {self.ack_timeout_s:.0f} s"
                continue
            if seat.owner is not None:
                ready, _ = ray.wait([seat.owner.__ray_ready__.remote()], timeout=0.2)
                if ready:
                    try:
                        ray.get(ready[0])
                    except RayActorError:
                        seat.left = True
                        log.info("member %d's trial is gone: its slot is free", seat.token)

    def _drop_leavers(self, group) -> None:
        for token, seat in list(self.seats.items()):
            if seat.left or (seat.ended and seat.acked and not seat.reports):
                if group is not None and seat.member is not None and seat.member in group.members:
                    group.release(seat.member)
                del self.seats[token]


GroupWorker = ray.remote(num_cpus=0)(GroupTrainer)


@contextmanager
def fused_groups(study, store_outage: Outage | None = None) -> Iterator[str | None]:
    """The name of the study's GroupDirectory while this driver runs the study (None when its
    trials are not fused); the directory and its groups are stopped after. `store_outage`: what a
    member waits for when the study's object store does not answer."""
    resources = study.config.resources
    if resources.fuse == 1:
        yield None
        return
    name = f"smcl-tune-fused-groups-{study.name}-{uuid.uuid4().hex[:8]}"  # a resumed run starts its own
    ack_timeout_s = ACK_TIMEOUT_S
    if store_outage is not None:  # a member waits out its object store's outage: that is not silence
        ack_timeout_s = max(ACK_TIMEOUT_S, store_outage.timeout_s + ACK_MARGIN_S)
    directory = GroupDirectory.options(name=name).remote(
        resources.fuse, resources.cpus / resources.fuse, resources.gpus, ack_timeout_s
    )
    try:
        yield name
    finally:
        ray.kill(directory)  # its group workers are its own: they go with it


def _stopped_by_ray_tune() -> bool:
    """Whether Ray Tune has asked this trial to stop. A function trainable learns it only at its next
    report; a member waiting for its group's next epoch asks here, so that its slot frees at once.
    Ray's session keeps the signal in a private attribute: without it, the group sees the trial's
    actor go, a little later."""
    try:
        from ray.train._internal.session import get_session

        event = getattr(get_session(), "stop_event", None)
    except Exception:  # another Ray version
        return False
    return event is not None and event.is_set()


def train_fused_member(
    config,
    report,
    checkpoint_dir: Path,
    resume_from: Path | None,
    directory: str,
) -> None:
    """Train `config` (a TrialConfig) as a member of one of the study's fused groups, relaying each
    epoch's `report(metrics, checkpoint)` as `run_trial` makes it."""
    from smcl_tune.trial.fused.fusible import fusible_shape

    context = ray.get_runtime_context()
    groups = ray.get_actor(directory)
    shape = json.dumps(fusible_shape(config), sort_keys=True)
    group = ray.get(groups.place.remote(shape, context.get_node_id(), [str(i) for i in ray.get_gpu_ids()]))
    owner = context.current_actor
    token = ray.get(
        group.join.remote(
            config.model_dump(mode="json"),
            str(checkpoint_dir),
            None if resume_from is None else str(resume_from),
            owner,
        )
    )
    try:
        while True:
            item = ray.get(group.next_report.remote(token))
            if item is None:
                if _stopped_by_ray_tune():
                    return  # stopped early (or the study ends): the slot is freed below, at once
                continue
            if "data_error" in item:
                raise DataSourceError(item["data_error"])
            if "error" in item:
                raise FusedGroupError(item["error"])
            metrics = {**item["metrics"], FUSED_GROUP: item["group"]}
            report(metrics, None if item["checkpoint"] is None else Path(item["checkpoint"]))
            if item["done"]:
                return
    finally:
        group.leave.remote(token)
