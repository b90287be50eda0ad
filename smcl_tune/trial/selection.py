"""The epoch a trial selects on its validation split: the best balanced accuracy so far, with a copy of
that epoch's weights."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass
class Selection:
    """The epoch selected on validation so far: its number, balanced accuracy and weights."""

    epoch: int | None = None
    score: float = -math.inf
    weights: dict[str, torch.Tensor] | None = None

    def consider(self, epoch: int, score: float, weights: Callable[[], dict[str, torch.Tensor]]) -> None:
        """Keep `epoch`, and a copy of the weights `weights()` gives (a network's state_dict), when its
        score beats the best so far."""
        if score > self.score:
            self.epoch, self.score = epoch, score
            self.weights = copy.deepcopy(weights())
