"""Fused members against their trials under CUDA's bf16 autocast, emulated on the CPU.

The CPU's autocast leaves a vmapped convolution in float32, CUDA's casts it to bf16; the emulation
(tests/trial/test_folded_norm.py) casts every convolution as CUDA's autocast does. Each member of
METHODS (tests/trial/test_fused_group.py: every method and classifier loss) steps in a group, eagerly
or through the recorded group step that CUDA captures, one step at a time from its trial's state,
and the script prints, per member, the largest relative difference of its loss from its trial's.
Without folded_norm.py, every fused step stopped with "expected scalar type BFloat16 but found Float".

    .venv/bin/python benchmarks/fused_autocast.py [--architecture resnet32] [--steps 12]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest
import torch

if __package__ in (None, ""):  # run as a file: the packages are found from the repository root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from tests.conftest import _tiny_config
from tests.trial.test_folded_norm import _cuda_like_autocast
from tests.trial.test_fused_group import METHODS, _every_method, _in_lockstep
from tests.trial.test_group_graphs import _with_graphs


def worst_differences(architecture: str, steps: int, recorded: bool) -> dict[str, float]:
    configs = _every_method(_tiny_config, epochs=steps)
    for config in configs:
        config["model"] = {"architecture": architecture}
    worst = dict.fromkeys(METHODS, 0.0)

    def compare(group, member, trial, metrics, theirs, name, before):
        worst[name] = max(worst[name], abs(metrics["loss"] - theirs["loss"]) / abs(theirs["loss"]))

    _in_lockstep(configs, compare=compare, names=list(METHODS), corrupt=_with_graphs([]) if recorded else None)
    return worst


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--architecture", default="small_cnn")
    parser.add_argument("--steps", type=int, default=12, help="at least 11: DRW's class weights start at step 10")
    arguments = parser.parse_args()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as patch:
        _cuda_like_autocast(patch)
        rows = {kind: worst_differences(arguments.architecture, arguments.steps, kind == "recorded")
                for kind in ("eager", "recorded")}  # fmt: skip
    print(f"{arguments.architecture}, {len(METHODS)} members, {arguments.steps} steps, CUDA's bf16 autocast emulated")
    print("largest |member loss - trial loss| / |trial loss|, one step at a time from the trial's state")
    print(f"{'member':<36}{'eager':>10}{'recorded':>10}")
    for name in METHODS:
        print(f"{name:<36}{rows['eager'][name]:>10.2e}{rows['recorded'][name]:>10.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
