import torch

from smcl_tune.models import build_network


def _parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_resnet32_has_the_cifar_shape():
    network = build_network("resnet32", num_classes=100)
    convs = [m for m in network.backbone.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 31  # stem + 3 stages x 5 blocks x 2 convs, plus the classifier = 32 layers
    assert {c.out_channels for c in convs} == {16, 32, 64}
    assert 0.45e6 < _parameters(network.backbone) < 0.48e6


def test_the_tiny_cnn_is_the_small_cnn_at_a_quarter_of_its_widths():
    small, tiny = build_network("small_cnn", num_classes=5), build_network("tiny_cnn", num_classes=5)
    small_convs = [m for m in small.backbone.modules() if isinstance(m, torch.nn.Conv2d)]
    tiny_convs = [m for m in tiny.backbone.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in tiny_convs] == [c.out_channels // 4 for c in small_convs] == [8, 16, 16, 24]
    assert _parameters(tiny.backbone) < _parameters(small.backbone) / 10


def test_networks_give_logits_and_unit_embeddings():
    for architecture, size in (("resnet32", 32), ("small_cnn", 32), ("tiny_cnn", 16), ("resnet18", 64)):
        network = build_network(architecture, num_classes=7)
        logits, z = network(torch.randn(3, 3, size, size), with_embedding=True)
        assert logits.shape == (3, 7) and z.shape == (3, 128)
        assert torch.allclose(z.norm(dim=1), torch.ones(3), atol=1e-5)
        assert network(torch.randn(2, 3, size, size))[1] is None


def test_the_cosine_classifier_gives_the_cosine_of_features_and_class_weights():
    network = build_network("small_cnn", num_classes=4, classifier="cosine")
    images = torch.randn(5, 3, 16, 16)
    logits, _ = network(images)
    features = network.backbone(images)
    weights = network.classifier.weight
    by_hand = torch.stack([torch.cosine_similarity(features, w[None, :], dim=1) for w in weights], dim=1)
    assert torch.allclose(logits, by_hand, atol=1e-5)
    assert logits.abs().max() <= 1 + 1e-6
    linear = build_network("small_cnn", num_classes=4)
    assert isinstance(linear.classifier, torch.nn.Linear)  # the default is unchanged
