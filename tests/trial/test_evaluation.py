"""A trial's evaluation: its results do not depend on how many images each forward pass takes."""

import torch

from smcl_tune.data.longtail import shot_groups
from smcl_tune.data.splits import DeviceSplit, TrialData
from smcl_tune.trial.device import evaluation_batch_size
from smcl_tune.trial.evaluation import background_edit, evaluate

COUNTS = [40, 20, 10, 5]


def random_test_data(images: int) -> TrialData:
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(images) % len(COUNTS)
    test = DeviceSplit(torch.randint(0, 256, (images, 3, 16, 16), dtype=torch.uint8, generator=generator), labels)
    none = DeviceSplit(test.images[:0], labels[:0])
    groups = shot_groups(COUNTS, many_above=30, few_below=8)
    mean, std = torch.full((3,), 0.5), torch.full((3,), 0.25)
    return TrialData(none, none, test, COUNTS, groups, ["a", "b", "c", "d"], mean, std)


class PixelClassifier(torch.nn.Module):
    """A random linear map of the pixels: its predictions vary from image to image (an untrained
    CNN's do not), and an erased box changes them."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(3 * 16 * 16, len(COUNTS))

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = images.flatten(1)
        return self.linear(features), features


def test_the_cpu_evaluates_in_small_chunks_and_a_gpu_in_large_ones():
    assert evaluation_batch_size(torch.device("cpu")) < evaluation_batch_size(torch.device("cuda"))


def test_any_chunk_size_gives_the_same_confusion_and_the_same_background_only_predictions():
    data = random_test_data(70)
    torch.manual_seed(0)
    network = PixelClassifier()
    erase = background_edit(data)
    whole = evaluate(network, data.test, data, batch_size=len(data.test))
    whole_background = evaluate(network, data.test, data, len(data.test), erase)
    assert not torch.equal(whole, whole_background)  # erasing the salient boxes changes some predictions
    for chunk in (1, 3, evaluation_batch_size(torch.device("cpu")), None):
        assert torch.equal(evaluate(network, data.test, data, batch_size=chunk), whole), chunk
        assert torch.equal(evaluate(network, data.test, data, chunk, erase), whole_background), chunk
