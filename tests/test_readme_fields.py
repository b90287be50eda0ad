"""The README's tables of config fields state the code's defaults, and every field of a trial's
config is named in the README: a user reads the defaults there, not in smcl_tune/config.py."""

import re
from pathlib import Path

import yaml
from pydantic import BaseModel

from smcl_tune.config import DEFAULT_IMBALANCE_FACTOR, DEFAULT_LOADER_WORKERS, TrialConfig
from smcl_tune.data.source_shape import DEFAULT_N_MAX

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
# a table of fields: its header, then rows | `section.field` / `field` ... | default / default ... | meaning |
TABLE = re.compile(r"^\| field \| default \| meaning \|\n\|---\|---\|---\|\n((?:\|.*\n)+)", re.MULTILINE)
ROW = re.compile(r"^\| (`[^|]*?) \| ([^|]*?) \|", re.MULTILINE)
# defaults the README gives as they resolve, where the code's default is None: (field, as written)
RESOLVED = {
    ("method.mask_end_epoch", "epochs - 3"),
    ("data.n_max", "the source's pool"),  # the row names each source's pool, checked below
    ("data.n_max", "500"),  # the synthetic source's table: its pool
    ("data.imbalance_factor", "100"),  # DEFAULT_IMBALANCE_FACTOR; unset for file lists
    ("data.loader_workers", "unset (4)"),
}


def _leaf_fields(model: type[BaseModel], prefix: str = "") -> dict[str, object]:
    fields = {}
    for name, field in model.model_fields.items():
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            fields |= _leaf_fields(field.annotation, f"{prefix}{name}.")
        else:
            fields[prefix + name] = field.get_default(call_default_factory=True)
    return fields


def _documented_defaults() -> list[tuple[str, str]]:
    """Each field a table row names, with the default the row states (`a.b` / `c` are a.b and a.c)."""
    documented = []
    rows = [row for table in TABLE.findall(README) for row in ROW.findall(table)]
    for names, defaults in rows:
        paths = re.findall(r"`([^`]+)`", names)
        section = paths[0].rsplit(".", 1)[0]
        paths = [paths[0]] + [f"{section}.{name}" for name in paths[1:]]
        values = defaults.split(" / ") if len(paths) > 1 else [defaults]
        assert len(values) == len(paths), names
        documented += zip(paths, values)
    return documented


def _read(written: str) -> object:
    if written.startswith("unset"):
        return None
    if written.startswith("`"):
        return written.strip("`")
    try:
        return float(written)  # YAML 1.1 would read 2e-4 as a string
    except ValueError:
        return yaml.safe_load(written)


def test_every_default_in_the_readmes_tables_is_the_codes():
    defaults = _leaf_fields(TrialConfig)
    documented = _documented_defaults()
    assert len(documented) >= 50  # the tables were found
    assert DEFAULT_IMBALANCE_FACTOR == 100 and DEFAULT_LOADER_WORKERS == 4
    assert DEFAULT_N_MAX == {"cifar10": 5000, "cifar100": 500, "synthetic": 500}
    assert "(CIFAR-10 5000, CIFAR-100 500, synthetic 500)" in README
    for path, written in documented:
        assert path in defaults, f"README names {path}, which is not a field"
        if (path, written) in RESOLVED:
            assert defaults[path] is None, path
            continue
        value = _read(written)
        assert value == defaults[path], f"{path}: README {written}, code {defaults[path]!r}"


def test_every_field_of_a_trial_is_named_in_the_readme():
    documented = _documented_defaults()
    named = {path for path, _ in documented} | set(
        re.findall(r"`((?:data|model|method|training)\.[a-z_.]+)[`:]", README)
    )
    unnamed = [path for path in _leaf_fields(TrialConfig) if path not in named]
    assert unnamed == []
