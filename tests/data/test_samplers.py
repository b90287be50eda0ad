"""The instance sampler and the minor-class (effective-number) sampler."""

import torch

from smcl_tune.data.samplers import InstanceSampler, MinorClassSampler
from smcl_tune.method.sampling import effective_number_probabilities


def test_instance_sampler_visits_every_image_once_per_epoch():
    sampler = InstanceSampler(103, 10, torch.Generator().manual_seed(0))
    batches = sampler.epoch()
    assert len(batches) == len(sampler) == 11
    assert sorted(torch.cat(batches).tolist()) == list(range(103))


def test_a_last_batch_of_one_image_joins_the_batch_before_it():
    sampler = InstanceSampler(65, 32, torch.Generator().manual_seed(0))
    batches = sampler.epoch()
    assert [len(batch) for batch in batches] == [32, 33] and len(sampler) == 2
    assert sorted(torch.cat(batches).tolist()) == list(range(65))
    assert [len(batch) for batch in InstanceSampler(1, 32, torch.Generator()).epoch()] == [1]
    two = InstanceSampler(66, 32, torch.Generator().manual_seed(0))  # a last batch of two stays a batch
    assert [len(batch) for batch in two.epoch()] == [32, 32, 2] and len(two) == 3


def test_minor_class_sampler_matches_effective_number_probabilities():
    counts = [400, 120, 40, 10, 3]
    labels = torch.arange(5).repeat_interleave(torch.tensor(counts))
    labels = labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(3))]
    sampler = MinorClassSampler(labels, counts, beta=0.999, generator=torch.Generator().manual_seed(0))
    drawn = torch.cat([sampler.sample(1000) for _ in range(200)])
    frequencies = torch.bincount(labels[drawn], minlength=5).double() / len(drawn)
    expected = effective_number_probabilities(counts, 0.999)
    assert torch.allclose(frequencies, expected, atol=0.005)
    assert frequencies[4] > frequencies[0]
    # within a class, images are drawn uniformly: every one of the 3 rarest is drawn
    rare = drawn[labels[drawn] == 4]
    assert len(set(rare.tolist())) == 3
