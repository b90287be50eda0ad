"""The class-activation saliency against a slow reference, and the random box: the control."""

import pytest
import torch
import torch.nn.functional as F

from smcl_tune.config import MethodConfig
from smcl_tune.method.batch import Batch
from smcl_tune.method.masking import box_mask, sample_beta
from smcl_tune.method.saliency import cam_saliency, random_saliency
from smcl_tune.method.step import StepSettings, mask_batch
from smcl_tune.models import build_network

NUM_CLASSES = 5


def _network(architecture: str = "small_cnn"):
    torch.manual_seed(0)
    return build_network(architecture, NUM_CLASSES).eval()


def _reference_cam(network, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Zhou et al.'s CAM in float64, by hand: with global average pooling and a linear classifier,
    Grad-CAM's channel weights are the label's classifier weights over h*w, so the map is
    ReLU(sum_k w_yk A_k), upsampled and normalised per image."""
    network = network.double()
    with torch.no_grad():
        features = network.backbone.body(images.double())  # [B, K, h, w]
        weights = network.classifier.weight[labels]  # [B, K]
        cam = F.relu(torch.einsum("bk,bkhw->bhw", weights, features))[:, None]
        cam = F.interpolate(cam, size=images.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    low = cam.flatten(1).min(1).values[:, None, None]
    high = cam.flatten(1).max(1).values[:, None, None]
    return (cam - low) / torch.where(high > low, high - low, torch.ones_like(high))


def test_cam_is_the_class_activation_map_of_each_images_own_label():
    network = _network()
    images = torch.randn(6, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    labels = torch.tensor([0, 1, 2, 3, 4, 2])
    maps = cam_saliency(lambda x: network(x)[0], network.backbone.last_block, images, labels)
    expected = _reference_cam(network, images, labels).float()
    assert maps.shape == (6, 16, 16) and maps.dtype == torch.float32
    assert float((maps - expected).abs().max()) < 1e-4
    other = cam_saliency(lambda x: network.float()(x)[0], network.backbone.last_block, images, (labels + 1) % 5)
    assert not torch.allclose(maps, other)  # the label's own evidence, not the network's favourite class


def test_cam_leaves_the_model_its_mode_its_statistics_and_no_gradient():
    network = build_network("resnet32", NUM_CLASSES)
    network.train()
    before = {name: buffer.clone() for name, buffer in network.named_buffers()}
    images = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    settings = StepSettings(MethodConfig(name="smcl", saliency="cam"), NUM_CLASSES)
    batch = Batch(images, torch.tensor([0, 1, 2, 3]), images.flip(0), torch.tensor([4, 4, 4, 4]))
    parts = mask_batch(settings, network, batch, torch.Generator().manual_seed(0))
    assert network.training and all(parameter.grad is None for parameter in network.parameters())
    assert all(torch.equal(before[name], buffer) for name, buffer in network.named_buffers())
    assert parts.saliency.shape == (4, 32, 32) and bool((parts.mask.sum(dim=(1, 2, 3)) > 0).all())
    assert all(len(module._forward_hooks) == 0 for module in network.modules())  # the hook is removed
    # the block is found, not registered twice: a checkpoint's keys stay those of earlier trials
    assert not [key for key in network.state_dict() if "last_block" in key]


def test_cam_is_zero_on_the_crops_padding():
    network = _network()
    images = torch.randn(3, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    content = torch.ones(3, 16, 16, dtype=torch.bool)
    content[:, :, :4] = False
    maps = cam_saliency(lambda x: network(x)[0], network.backbone.last_block, images, torch.tensor([0, 1, 2]), content)
    assert float(maps[:, :, :4].abs().max()) == 0.0


def test_a_random_box_is_centred_uniformly_over_the_images_own_pixels():
    batch, size = 24000, 4
    content = torch.ones(batch, size, size, dtype=torch.bool)
    content[:, :, 0] = False  # the crop padded the first column
    images = torch.zeros(batch, 3, size, size)
    maps = random_saliency(images, torch.Generator().manual_seed(0), content)
    peaks = maps.flatten(1).argmax(1)
    counts = torch.bincount(peaks, minlength=size * size).view(size, size)
    assert int(counts[:, 0].sum()) == 0  # never on the padding
    expected = batch / (size * (size - 1))
    assert float((counts[:, 1:].float() - expected).abs().max()) < 5 * expected**0.5  # uniform: within 5 sigma


def test_the_random_box_is_the_same_for_the_same_generator_and_ignores_the_image():
    images = torch.randn(8, 3, 16, 16)
    lam = sample_beta(1.0, 8, torch.Generator().manual_seed(0))
    first = box_mask(random_saliency(images, torch.Generator().manual_seed(7)), lam)
    again = box_mask(random_saliency(torch.zeros_like(images), torch.Generator().manual_seed(7)), lam)
    assert torch.equal(first, again)


def test_random_with_a_threshold_mask_is_refused_naming_the_field():
    from smcl_tune.config import TrialConfig

    with pytest.raises(ValueError, match=r"method\.saliency: 'random' places a box at random"):
        TrialConfig.model_validate({"method": {"saliency": "random", "mask_mode": "threshold"}})
