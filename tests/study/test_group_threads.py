"""A fused group's torch threads: the CPUs its training members hold, or the trials' own setting."""

from smcl_tune.study.group_threads import group_threads


def test_a_group_trains_with_the_whole_cpus_its_members_hold():
    assert group_threads(4, 2 / 4, None) == 2  # a full group has the study's resources.cpus
    assert group_threads(2, 2 / 4, None) == 1
    assert group_threads(3, 0.6 / 2, None) == 1  # 0.9 CPU: at least one thread
    assert group_threads(3, 4 / 4, None) == 3
    assert group_threads(5, 2.4 / 6, None) == 2  # 2.0 held, though 5 x (2.4 / 6) is 1.9999999999999998


def test_two_single_member_groups_of_one_study_use_the_two_cores_their_trials_hold_not_four():
    """resources {cpus: 2, fuse: 2}, a search over the batch size: two groups of one member each."""
    assert group_threads(1, 2 / 2, None) + group_threads(1, 2 / 2, None) == 2


def test_the_trials_own_num_threads_wins():
    assert group_threads(4, 2 / 4, 1) == 1
    assert group_threads(1, 0.25, 3) == 3
