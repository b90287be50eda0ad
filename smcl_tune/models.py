"""Backbones (ResNet-32 for CIFAR, a small CNN, torchvision ResNets), classifiers and the SMCL network."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class _BasicBlock(nn.Module):
    """CIFAR ResNet block; the shortcut subsamples and zero-pads channels (He et al. 2016, option A)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.stride = stride
        self.extra_channels = out_channels - in_channels

    def _shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride != 1:
            x = x[:, :, :: self.stride, :: self.stride]
        if self.extra_channels:
            half = self.extra_channels // 2
            x = F.pad(x, (0, 0, 0, 0, half, self.extra_channels - half))
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self._shortcut(x))


class CifarResNet(nn.Module):
    """ResNet-6n+2 for 32x32 images: 3 stages of n basic blocks with 16 / 32 / 64 channels."""

    def __init__(self, blocks_per_stage: int = 5) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU(inplace=True))
        layers, channels = [], 16
        for stage, width in enumerate((16, 32, 64)):
            for block in range(blocks_per_stage):
                stride = 2 if stage > 0 and block == 0 else 1
                layers.append(_BasicBlock(channels, width, stride))
                channels = width
        self.stages = nn.Sequential(*layers)
        self.feature_dim = 64
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    @property
    def last_block(self) -> nn.Module:
        """The block whose output is the feature map a class activation map weighs (a property: as an
        attribute it would enter the state_dict a second time)."""
        return self.stages

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return global_average(self.stages(self.stem(x)))


def global_average(features: torch.Tensor) -> torch.Tensor:
    """[B, C, H, W] -> [B, C]. What adaptive_avg_pool2d(features, 1) computes for a channels_last input
    (a mean over H and W), to the bit; under vmap (fused trials) that op falls back to a loop over the
    members for its as_strided_, which a mean has no need of."""
    return features.mean(dim=(2, 3))


SMALL_CNN_WIDTHS = (32, 64, 64, 96)  # about 111k parameters
TINY_CNN_WIDTHS = (8, 16, 16, 24)  # about 7k: a quarter of each width, about a sixteenth of the arithmetic


class SmallCNN(nn.Module):
    """Four conv layers for quick CPU runs (`small_cnn`), or the same at a quarter of its widths
    (`tiny_cnn`), for smoke runs of a study file and the suite's tiny trials."""

    def __init__(self, widths: tuple[int, ...] = SMALL_CNN_WIDTHS) -> None:
        super().__init__()
        layers, channels = [], 3
        for index, width in enumerate(widths):
            layers += [nn.Conv2d(channels, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
            if index > 0:
                layers.append(nn.MaxPool2d(2))
            channels = width
        self.body = nn.Sequential(*layers)
        self.feature_dim = channels

    @property
    def last_block(self) -> nn.Module:
        return self.body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return global_average(self.body(x))


class TorchvisionResNet(nn.Module):
    """torchvision ResNet-18/50 (random init) as a feature extractor for larger images."""

    def __init__(self, name: str) -> None:
        super().__init__()
        import torchvision  # here, not at the top: its import brings torch._dynamo (about 1 s a process)

        network = getattr(torchvision.models, name)(weights=None)
        self.feature_dim = network.fc.in_features
        network.fc = nn.Identity()
        self.network = network

    @property
    def last_block(self) -> nn.Module:
        return self.network.layer4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x)


class ProjectionHead(nn.Module):
    """Two-layer MLP to `output_dim`, L2-normalised output (the contrastive embedding z)."""

    def __init__(self, input_dim: int, output_dim: int = 128) -> None:
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(input_dim, input_dim), nn.ReLU(inplace=True), nn.Linear(input_dim, output_dim)
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.mlp(features), dim=1)


class CosineClassifier(nn.Module):
    """Logits cos(h, w_k): the cosine between the features and each class's weight vector, in [-1, 1].

    The scale s that LDAM puts on these logits belongs to the loss (`method.ldam_scale`).
    """

    def __init__(self, input_dim: int, num_classes: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_classes, input_dim))
        nn.init.normal_(self.weight, std=input_dim**-0.5)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return F.normalize(features, dim=1) @ F.normalize(self.weight, dim=1).T


CLASSIFIERS = ("linear", "cosine")


def build_classifier(kind: str, input_dim: int, num_classes: int) -> nn.Module:
    """A classifier by name: linear (a bias, unbounded logits) or cosine (`CosineClassifier`)."""
    if kind == "linear":
        return nn.Linear(input_dim, num_classes)
    if kind == "cosine":
        return CosineClassifier(input_dim, num_classes)
    raise ValueError(f"model.classifier: unknown {kind!r}, expected one of {CLASSIFIERS}")


class SMCLNetwork(nn.Module):
    """Backbone with a classifier (linear or cosine) and a projection head on the pooled features h."""

    def __init__(
        self, backbone: nn.Module, num_classes: int, projection_dim: int = 128, classifier: str = "linear"
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.classifier = build_classifier(classifier, backbone.feature_dim, num_classes)
        self.projection = ProjectionHead(backbone.feature_dim, projection_dim)

    def forward(self, x: torch.Tensor, with_embedding: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        features = self.backbone(x)
        logits = self.classifier(features)
        return logits, (self.projection(features) if with_embedding else None)


def build_backbone(architecture: str) -> nn.Module:
    """A backbone by name: resnet32, small_cnn, tiny_cnn, resnet18, resnet50."""
    if architecture == "resnet32":
        return CifarResNet(blocks_per_stage=5)
    if architecture == "small_cnn":
        return SmallCNN()
    if architecture == "tiny_cnn":
        return SmallCNN(TINY_CNN_WIDTHS)
    if architecture in ("resnet18", "resnet50"):
        return TorchvisionResNet(architecture)
    raise ValueError(f"model.architecture: unknown {architecture!r}")


def build_network(
    architecture: str, num_classes: int, projection_dim: int = 128, classifier: str = "linear"
) -> SMCLNetwork:
    return SMCLNetwork(build_backbone(architecture), num_classes, projection_dim, classifier)
