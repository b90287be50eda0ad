"""How many torch threads a fused group's process trains with."""

from __future__ import annotations

import math


def group_threads(members: int, cpus_per_member: float, num_threads: int | None) -> int:
    """The members' own `training.num_threads` where the study sets it (a field of the fusible
    shape, so every member has the same), else the whole CPUs the group's training members hold
    from Ray (`resources.cpus / resources.fuse` each), at least one. Counting held CPUs, not the
    study's `resources.cpus`, keeps the groups of several shapes on one node within the CPUs Ray
    gave their trials: two groups of one member each at `cpus: 2, fuse: 2` train with one thread
    each on two cores, not two each (whose OpenMP threads then spin against each other)."""
    if num_threads is not None:
        return num_threads
    return max(1, math.floor(members * cpus_per_member + 1e-9))  # 1e-9: 5 x (2.4 / 6) is 1.999...
