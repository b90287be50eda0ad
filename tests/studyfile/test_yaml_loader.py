"""A study file from someone else cannot stop the service: alias bombs and deep nesting are refused
in one line while the file is parsed, and no message prints a huge value."""

import subprocess
import sys

import pytest

from smcl_tune.errors import ConfigError
from smcl_tune.studyfile.yaml_loader import MAX_YAML_DEPTH, load_yaml


def _alias_chain(levels: int) -> str:
    """`&l9 [&l8 [... &l1 [1, ... 1], *l1 x8], ... *l8 x8]`: 9**levels values once expanded."""
    if levels == 1:
        return "&l1 [" + ", ".join(["1"] * 9) + "]"
    return f"&l{levels} [{_alias_chain(levels - 1)}, " + ", ".join([f"*l{levels - 1}"] * 8) + "]"


def _study(tmp_path, milestones: str):
    path = tmp_path / "hostile.yaml"
    path.write_text(f"name: hostile\ntrial:\n  training:\n    milestones: {milestones}\n")
    return path


def _cli(command: str, path, cwd) -> subprocess.CompletedProcess:
    # 60 s is far above the second it takes; an unbounded expansion takes minutes and gigabytes.
    return subprocess.run(
        [sys.executable, "-m", "smcl_tune.cli", command, str(path)], cwd=cwd, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("command", ["validate", "run"])
def test_an_alias_bomb_in_a_typed_field_is_refused_in_one_line(tmp_path, command):
    path = _study(tmp_path, _alias_chain(9))
    done = _cli(command, path, tmp_path)
    assert done.returncode == 2
    error = done.stderr.strip()
    assert len(error.splitlines()) == 1, error
    assert error.startswith(f"smcl-tune: {path}: more than 10,000 values once its aliases")
    assert list(tmp_path.iterdir()) == [path]  # nothing started, nothing written


@pytest.mark.parametrize("command", ["validate", "run"])
def test_a_deeply_nested_document_is_refused_without_a_traceback(tmp_path, command):
    path = _study(tmp_path, "[" * 10_000 + "]" * 10_000)
    done = _cli(command, path, tmp_path)
    assert done.returncode == 2
    error = done.stderr.strip()
    assert error == f"smcl-tune: {path}: nested more than {MAX_YAML_DEPTH} levels deep (line 4)"
    assert list(tmp_path.iterdir()) == [path]


def test_a_huge_value_is_shown_cut_short(tmp_path):
    path = tmp_path / "huge.yaml"
    path.write_text("name: " + "x" * 100_000 + "\n")
    done = _cli("validate", path, tmp_path)
    assert done.returncode == 2
    error = done.stderr.strip()
    assert len(error.splitlines()) == 1 and "name: String should have at most 100 characters, got 'xxx" in error
    assert len(error) < 300, error


def test_an_alias_that_holds_itself_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="an alias refers to the value that holds it"):
        load_yaml(_study(tmp_path, "&loop [1, *loop]"))


def test_anchors_and_merge_keys_within_the_bound_still_load(tmp_path):
    path = tmp_path / "anchors.yaml"
    path.write_text(
        "common: &common {lr: 0.1, momentum: 0.9}\n"
        "baselines:\n  - {name: a, overrides: {<<: *common, seed: 1}}\n  - {name: b, overrides: *common}\n"
        f"milestones: {_alias_chain(4)}\n"  # 9**4 = 6,561 values once expanded
    )
    raw = load_yaml(path)
    assert raw["baselines"][0]["overrides"] == {"lr": 0.1, "momentum": 0.9, "seed": 1}
    assert raw["baselines"][1]["overrides"] == {"lr": 0.1, "momentum": 0.9}
    assert len(raw["milestones"]) == 9 and len(raw["milestones"][0][0][0]) == 9


def test_a_key_given_twice_is_refused_naming_both_lines_and_a_merged_key_may_be_overridden(tmp_path):
    twice = tmp_path / "twice.yaml"
    twice.write_text("name: x\nsearch:\n  method.temperature: {uniform: [0.1, 0.5]}\nseed: 1\nsearch: {}\n")
    done = _cli("validate", twice, tmp_path)  # the second search would have dropped the first, silently
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip() == (
        f"smcl-tune: {twice}: 'search' twice in one mapping (lines 2 and 5): YAML would keep the second and drop "
        "the first; give it once"
    )
    with pytest.raises(ConfigError, match=r"'lr' twice in one mapping \(lines 4 and 4\)"):
        load_yaml(_study(tmp_path, "{lr: 1, lr: 2}"))
    # written differently, one key once loaded: the dict would keep the second silently
    for keys, written in [
        ("1: a, 1.0: b", "'1' and '1.0'"),
        ("null: a, ~: b", "'null' and '~'"),
        ("!!float 1: a, 1: b", r"'1' \(float\) and '1' \(int\)"),  # one text: the types tell them apart
    ]:
        with pytest.raises(ConfigError, match=rf"{written}, one key, in one mapping \(lines 4 and 4\)"):
            load_yaml(_study(tmp_path, "{" + keys + "}"))
    assert load_yaml(_study(tmp_path, '{"1": a, 1: b}'))["trial"]["training"]["milestones"] == {"1": "a", 1: "b"}
    merged = tmp_path / "merged.yaml"
    merged.write_text("common: &common {lr: 0.1}\nmine: {<<: *common, lr: 0.2}\n")
    assert load_yaml(merged)["mine"] == {"lr": 0.2}
    # an anchored mapping with a merge of its own, met again through its alias: PyYAML has flattened it by then
    nested = tmp_path / "nested.yaml"
    nested.write_text("base: &base {lr: 0.1}\nx:\n  <<: &d {<<: *base, lr: 0.2}\n  m: 1\ny: *d\n")
    assert load_yaml(nested)["y"] == {"lr": 0.2}
