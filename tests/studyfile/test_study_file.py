"""Bad study files: exit code 2, one line naming the file, the field path and the reason."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from smcl_tune.cli import main
from smcl_tune.errors import ConfigError

QUICKSTART = Path(__file__).resolve().parents[2] / "studies" / "quickstart.yaml"


def _study(tmp_path: Path, change) -> Path:
    raw = yaml.safe_load(QUICKSTART.read_text())
    change(raw)
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _set(path: str, value):
    def change(raw):
        *parents, leaf = path.split(".")
        node = raw
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value

    return change


BAD_STUDIES = [
    (  # a typo of many digits would train for ever
        "epochs past any recipe",
        lambda r: r["trial"]["training"].update(epochs=10**32),
        "trial.training.epochs: Input should be less than or equal to 100000",
    ),
    ("trials past any search", lambda r: r.update(num_trials=10**26), "num_trials: Input should be less than or equal"),
    (
        "a head class past any data",
        lambda r: r["trial"]["data"].update(n_max=10**15),
        "trial.data.n_max: Input should be less than or equal to 10000000",
    ),
    (
        "condition values equal but written differently",
        lambda r: r.update(conditions={"data.imbalance_factor": [10, 10.0]}),
        "conditions.data.imbalance_factor: 10 and 10.0 are one value written differently, one condition "
        "(imbalance_factor=10); give each value once",
    ),
    (  # not equal: their labels round them to one, which the message said were equal values
        "condition values whose labels round to one",
        lambda r: r.update(conditions={"data.synthetic.rho": [0.9, 0.9000001]}),
        "conditions.data.synthetic.rho: 0.9 and 0.9000001 both label as rho=0.9 (a label keeps 6 significant "
        "digits); give values whose labels differ",
    ),
    (
        "a whole condition value and one just above it",
        lambda r: r.update(conditions={"data.imbalance_factor": [10, 10.0000000001]}),
        "conditions.data.imbalance_factor: 10 and 10.0000000001 both label as imbalance_factor=10 (a label keeps 6 "
        "significant digits); give values whose labels differ",
    ),
    (
        "grace period past the epochs",
        lambda r: r["scheduler"].update(grace_period=9),
        "scheduler.grace_period: 9 epochs before ASHA may stop a trial, but trials train 8 (trial.training.epochs)",
    ),
    (
        "a confirmation that changes a searched field",
        lambda r: r.update(confirm={"top_k": 1, "seeds": [1, 2], "overrides": {"method.temperature": 0.2}}),
        "confirm.overrides.method.temperature: a searched field; the confirmation retrains each selected",
    ),
    (
        "a confirmation seed that repeats the search trial",
        lambda r: r.update(confirm={"top_k": 1, "seeds": [0, 1]}),
        "confirm.seeds: 0 is the seed the search trials train with (trial.training.seed), and confirm.overrides",
    ),
    (
        "a choice given twice",
        lambda r: r["search"].update({"method.temperature": {"choice": [0.1, 0.1]}}),
        "each value once, got [0.1, 0.1]",
    ),
    (  # a value given twice is sampled twice as often
        "a choice written twice as one number",
        lambda r: r["search"].update({"method.temperature": {"choice": [1, 1.0]}}),
        "search.method.temperature.choice: each value once, got [1, 1.0] (1 and 1.0 are one value as the field "
        "reads them)",
    ),
    (
        "a choice written twice as a number and as text",
        lambda r: r["search"].update({"method.temperature": {"choice": [0.1, "0.1"]}}),
        "search.method.temperature.choice: each value once, got [0.1, '0.1'] (0.1 and '0.1' are one value as the "
        "field reads them)",
    ),
    (
        "a whole-number choice written twice",
        lambda r: r["search"].update({"training.batch_size": {"choice": [32, 64, 32.0]}}),
        "search.training.batch_size.choice: each value once, got [32, 64, 32.0] (32 and 32.0 are one value as",
    ),
    (
        "unknown search path",
        lambda r: r["search"].update({"method.temprature": {"uniform": [0.1, 0.2]}}),
        "search.method.temprature: names no config field",
    ),
    (
        "bounds reversed",
        lambda r: r["search"].update({"method.temperature": {"loguniform": [0.5, 0.03]}}),
        "search.method.temperature.loguniform: low must be below high",
    ),
    (
        "log of zero",
        lambda r: r["search"].update({"method.temperature": {"loguniform": [0.0, 0.5]}}),
        "low must be > 0 on a log scale",
    ),
    (
        "bound outside the field's range",
        lambda r: r["search"].update({"method.saliency_threshold": {"uniform": [0.3, 1.5]}}),
        "search.method.saliency_threshold: the value 1.5 gives an invalid trial: method.saliency_threshold:",
    ),
    (
        "empty choice",
        lambda r: r["search"].update({"data.imbalance_factor": {"choice": []}}),
        "search.data.imbalance_factor.choice: needs a non-empty list",
    ),
    ("empty space", lambda r: r.update({"search": {}}), "search: the search space is empty"),
    ("negative count", _set("num_trials", -3), "num_trials: Input should be greater than or equal to 0, got -3"),
    ("gpu fraction above 1", _set("resources.gpus", 1.5), "resources.gpus: Input should be less than or equal to 1"),
    ("no trials fused", _set("resources.fuse", 0), "resources.fuse: Input should be greater than or equal to 1, got 0"),
    ("unknown metric", _set("objective.metric", "val_accuracyy"), "objective.metric: unknown metric 'val_accuracyy'"),
    ("test metric", _set("objective.metric", "test_top1"), "objective.metric: tuning never reads the test set"),
    (
        "bad trial field",
        _set("trial.method.temperature", -1),
        "trial.method.temperature: Input should be greater than 0",
    ),
    ("unknown top-level key", _set("shceduler", {}), "shceduler: unknown field"),
    (
        "epochs searched under ASHA",
        lambda r: r["search"].update({"training.epochs": {"int": [4, 8]}}),
        "search.training.epochs: ASHA gives every trial scheduler.max_epochs epochs",
    ),
    (
        "max_epochs below the epochs",
        _set("scheduler.max_epochs", 4),
        "scheduler.max_epochs: ASHA stops every trial at max_epochs (4) while trials train trial.training.epochs (8)",
    ),
    (
        "max_epochs without ASHA",
        _set("scheduler", {"type": "fifo", "max_epochs": 8}),
        "scheduler.max_epochs: used by the ASHA scheduler only",
    ),
    (
        "unreadable data root",
        lambda r: r["trial"]["data"].update({"source": "image_folder", "root": "/nonexistent/data"}),
        "/nonexistent/data",
    ),
    # Conditions, seeds and the confirmation stage (issue 14).
    (
        "a searched field that changes what is measured",
        lambda r: r["search"].update({"data.imbalance_factor": {"choice": [10, 100]}}),
        "search.data.imbalance_factor: changes what a trial measures (its data or shot groups), so its trials would "
        "not be comparable; put it under conditions:",
    ),
    (
        "a baseline that changes what is measured",
        lambda r: r["baselines"].append({"name": "other", "overrides": {"data.few_below": 5}}),
        "baselines[1].overrides.data.few_below: changes what a trial measures",
    ),
    (
        "a condition that is also searched",
        lambda r: r.update(conditions={"method.temperature": [0.1, 0.2]}),
        "search.method.temperature: is a condition; a path is either searched or a condition",
    ),
    (
        "an empty condition",
        lambda r: r.update(conditions={"data.imbalance_factor": []}),
        "conditions.data.imbalance_factor: needs a non-empty list of values",
    ),
    (
        "a condition that gives an invalid trial",
        lambda r: r.update(conditions={"data.imbalance_factor": [10, 0.5]}),
        "conditions (imbalance_factor=0.5) give an invalid trial: data.imbalance_factor",
    ),
    (
        "confirming more than was searched",
        lambda r: r.update(confirm={"top_k": 9, "seeds": [1]}),
        "confirm.top_k: 9 is more than the 8 trials searched",
    ),
    (
        "a confirmation seed twice",
        lambda r: r.update(confirm={"top_k": 2, "seeds": [1, 1]}),
        "confirm.seeds: each seed once, got [1, 1]",
    ),
    (
        "a baseline seed out of range",
        lambda r: r["baselines"][0].update(seeds=[0, -1]),
        "baselines.0.seeds.1: Input should be greater than or equal to 0",
    ),
    (
        "a baseline-only study without baselines",
        lambda r: r.update(search={}, num_trials=0, baselines=[]),
        "num_trials: a study with no trials to sample needs baselines",
    ),
    (
        "a search without a validation split",
        _set("trial.data.val_per_class", 0),
        "trial.data.val_per_class: 0 leaves no validation split, and a search is tuned on val_balanced_accuracy",
    ),
    # Values that passed validation and failed later, inside trials (issue 13).
    (
        "a whole-number field searched with uniform",
        lambda r: r["search"].update({"training.batch_size": {"uniform": [16, 64]}}),
        "search.training.batch_size: uniform gives values this field does not take; use int, logint or choice",
    ),
    (
        "a named option searched with uniform",
        lambda r: r["search"].update(
            {"method.saliency_threshold": {"uniform": [0.3, 0.9]}, "method.mask_mode": {"uniform": [0, 1]}}
        ),
        "search.method.mask_mode: uniform gives values this field does not take; use choice",
    ),
    (
        "searched values that clash with each other",
        lambda r: r["search"].update(
            {"method.mask_start_epoch": {"int": [0, 7]}, "method.mask_end_epoch": {"int": [2, 8]}}
        ),
        "search: the combination {",
    ),
    (
        "a baseline name with a quote",
        lambda r: r["baselines"].append({"name": "ce'); drop", "overrides": {}}),
        "baselines.1.name: a name of letters, digits, underscores, dots and hyphens, starting with a letter or a "
        "digit, got",
    ),
    (
        "two baselines of one name",
        lambda r: r["baselines"].append({"name": "ce", "overrides": {}}),
        "baselines: each baseline needs a name of its own; repeated: ce",
    ),
    ("a name the store uses itself", _set("name", "mlartifacts"), "name: 'mlartifacts' is a name the study store uses"),
    (
        "an unknown device",
        _set("trial.training.device", "banana"),
        "trial.training.device: one of auto, cpu, cuda, cuda:N (a GPU's index) or mps, got 'banana'",
    ),
    (
        "a misspelt field",
        _set("trial.data.nmax", 100),
        "trial.data.nmax: unknown field; did you mean trial.data.n_max?",
    ),
    (
        "a field in the wrong section",
        _set("trial.training.temperature", 0.1),
        "trial.training.temperature: unknown field; did you mean trial.method.temperature?",
    ),
    ("a misspelt study field", _set("n_trials", 3), "n_trials: unknown field; did you mean num_trials?"),
    (
        "a short field's long form",
        _set("trial.training.learning_rate", 0.1),
        "trial.training.learning_rate: unknown field; did you mean trial.training.lr?",
    ),
    (
        "a short field's longer form",
        _set("trial.training.lrate", 0.1),
        "trial.training.lrate: unknown field; did you mean trial.training.lr?",
    ),
    (  # the subset's seed beside it, or the training's (which orders the data)
        "a seed in the data section",
        _set("trial.data.seed", 1),
        "trial.data.seed: unknown field; did you mean trial.data.subset_seed or trial.training.seed?",
    ),
    ("a trial section at the top", _set("training.lr", 0.1), "training: unknown field; did you mean trial.training?"),
    (
        "a study field under trial",
        _set("trial.tracking", {}),
        "trial.tracking: unknown field; tracking is a field of the study: write it at the top level, not under trial:",
    ),
    (
        "a baseline's misspelt field",
        lambda r: r["baselines"].append({"name": "other", "seed": [1]}),
        "baselines.1.seed: unknown field; did you mean baselines.1.seeds?",
    ),
    (
        "a searched path without its section",
        lambda r: r["search"].update({"temperature": {"uniform": [0.1, 0.5]}}),
        "search.temperature: names no config field; did you mean method.temperature?",
    ),
    ("a fractional count", _set("num_trials", 3.5), "num_trials: Input should be a whole number, got 3.5"),
    (  # pydantic took true as 1: `epochs: yes` trained one epoch
        "yes for a count",
        _set("num_trials", True),
        "num_trials: Input should be a number, not true or false (YAML reads yes, no, on and off so), got True",
    ),
    ("no for a rate", _set("trial.training.lr", False), "trial.training.lr: Input should be a number, not true or"),
    ("yes for an optional count", _set("trial.data.n_max", True), "trial.data.n_max: Input should be a number, not"),
    ("yes in a list of numbers", _set("trial.training.milestones", [True, 180]), "trial.training.milestones: Input"),
    (
        "a value whose digits are in the bound",  # 6 is in "16": the value was left out
        _set("trial.data.synthetic.image_size", 6),
        "trial.data.synthetic.image_size: Input should be greater than or equal to 16, got 6",
    ),
    (
        "a name that is a character the rule names",
        _set("name", "_"),
        "name: a name of letters, digits, underscores, dots and hyphens, starting with a letter or a digit, got '_'",
    ),
    ("a seed outside 32 bits", _set("trial.training.seed", 2**32), "trial.training.seed: Input should be less than"),
    ("a negative subset seed", _set("trial.data.subset_seed", -1), "trial.data.subset_seed: Input should be greater"),
    ("a study seed outside 32 bits", _set("seed", 2**40), "seed: Input should be less than 4294967296"),
    (
        "an infinite imbalance factor",
        _set("trial.data.imbalance_factor", float("inf")),
        "trial.data.imbalance_factor: Input should be a finite number",
    ),
    (
        "an infinite blur",
        _set("trial.method.saliency_blur_sigma", float("inf")),
        "trial.method.saliency_blur_sigma: Input should be a finite number",
    ),
    (  # the study file's own models refuse NaN and infinity as the trial's do
        "an infinite ASHA reduction factor",
        _set("scheduler.reduction_factor", float("inf")),
        "scheduler.reduction_factor: Input should be a finite number",
    ),
    (
        "a NaN CPU count",
        _set("resources.cpus", float("nan")),
        "resources.cpus: Input should be a finite number",
    ),
    (
        "a NaN milestone factor",
        lambda r: r["trial"]["training"].update(
            {"schedule": "step", "milestones": [4], "milestone_factors": [float("nan")]}
        ),
        "trial.training.milestone_factors.0: Input should be a finite number",
    ),
    (
        "a fused study that compiles",
        lambda r: (r["trial"]["training"].update(device="auto", compile=True), r["resources"].update(fuse=4)),
        "trial.training.compile: a fused group (resources.fuse: 4) trains its members as one stacked model, "
        "uncompiled; set resources.fuse: 1 to compile each trial",
    ),
    (
        "a fused study with a compiled baseline",
        lambda r: (
            r["trial"]["training"].update(device="auto"),
            r["baselines"][0]["overrides"].update({"training.compile": True}),
            r["resources"].update(fuse=2),
        ),
        "baselines[0].overrides.training.compile: a fused group (resources.fuse: 2) trains its members",
    ),
    (
        "a fused study with a compiled condition",
        lambda r: (
            r["trial"]["training"].update(device="auto"),
            r.update(conditions={"training.compile": [False, True]}),
            r["resources"].update(fuse=2),
        ),
        "conditions.training.compile: a fused group (resources.fuse: 2) trains its members",
    ),
    (
        "a fuse that leaves each trial less CPU than Ray can give",
        lambda r: r["resources"].update(cpus=1, fuse=100000),
        "resources.fuse: each trial would hold 1e-05 of a CPU (resources.cpus 1 / resources.fuse 100000); "
        "Ray Tune's smallest share is 0.0001",
    ),
    (
        "a GPU share Ray cannot give",
        lambda r: r["resources"].update(gpus=0.00001),
        "resources.gpus: each trial would hold 1e-05 of a GPU",
    ),
    (  # Ray gives such trials no GPU: each failed as it started, with "Found no NVIDIA driver"
        "a CUDA trial with no GPU for it",
        _set("trial.training.device", "cuda"),
        "trial.training.device: cuda trains on a GPU, and trials get none (resources.gpus: 0); give each trial "
        "one (resources.gpus: 1, or 0.5 to share one) or set device: cpu",
    ),
    (
        "a CUDA device by index with no GPU for it",
        _set("trial.training.device", "cuda:0"),
        "trial.training.device: cuda:0 trains on a GPU, and trials get none (resources.gpus: 0)",
    ),
    (
        "a searched CUDA device with no GPU for it",
        lambda r: r["search"].update({"training.device": {"choice": ["cpu", "cuda"]}}),
        "search.training.device: cuda trains on a GPU, and trials get none (resources.gpus: 0)",
    ),
    (
        "a CUDA baseline with no GPU for it",
        lambda r: r["baselines"][0]["overrides"].update({"training.device": "cuda"}),
        "baselines[0].overrides.training.device: cuda trains on a GPU, and trials get none (resources.gpus: 0)",
    ),
    (
        "a CUDA condition with no GPU for it",
        lambda r: r.update(conditions={"training.device": ["cpu", "cuda"]}),
        "conditions.training.device: cuda trains on a GPU, and trials get none (resources.gpus: 0)",
    ),
    (  # nothing expands ~: a folder named ~ was made in the current one
        "a storage from the home folder",
        _set("storage", "~/smcl-runs-x"),
        "storage: '~/smcl-runs-x' starts with ~, which is not expanded (a folder named ~ would be made in the current "
        "one); write the path out, as the file may be read on other machines",
    ),
    (
        "a data root from the home folder",
        lambda r: r["trial"]["data"].update({"source": "cifar10", "root": "~/data"}),
        "trial.data.root: '~/data' starts with ~, which is not expanded",
    ),
    (
        "a tracking sqlite file from the home folder",
        _set("tracking.uri", "sqlite:///~/mlflow.db"),
        "tracking.uri: 'sqlite:///~/mlflow.db' starts with ~, which is not expanded",
    ),
    (
        "a tracking folder from the home folder",
        _set("tracking.uri", "file:~/mlruns"),
        "tracking.uri: 'file:~/mlruns' starts with ~, which is not expanded",
    ),
    (
        "an Optuna sqlite file from the home folder",
        _set("optuna.storage", "sqlite:///~/optuna.db"),
        "optuna.storage: 'sqlite:///~/optuna.db' starts with ~, which is not expanded",
    ),
    (  # one metric twice: a multi-objective study of one objective
        "a secondary objective that is the objective",
        _set("objective", {"metric": "val_top1", "secondary": {"metric": "val_top1", "mode": "max"}}),
        "objective.secondary: val_top1 is already the objective's metric; a second objective is another metric",
    ),
    (  # pydantic's own words named its class: "a valid dictionary or instance of DataConfig"
        "a number where a section goes",
        lambda r: r["trial"].update(data=5),
        "trial.data: Input should be a section of fields (`field: value` lines under it), got 5",
    ),
    (
        "an enormous image size",
        lambda r: r["trial"]["data"].update({"source": "image_folder", "root": "/x", "image_size": 1000000}),
        "trial.data.image_size: Input should be less than or equal to 1024",
    ),
]


@pytest.mark.parametrize("label, change, expected", BAD_STUDIES, ids=[case[0] for case in BAD_STUDIES])
def test_bad_study_exits_2_with_one_clear_line(tmp_path, capsys, label, change, expected):
    path = _study(tmp_path, change)
    assert main(["validate", str(path)]) == 2
    error = capsys.readouterr().err.strip()
    assert expected in error
    assert str(path) in error
    assert "Traceback" not in error and len(error.splitlines()) == 1


@pytest.mark.parametrize(
    "change",
    [_set("objective.name", "x"), _set("trial.training.uri", "x"), _set("trial.training.lr_decay", 0.1)],
    ids=["objective.name", "training.uri", "training.lr_decay"],  # lr_decay is not the learning rate
)
def test_a_name_near_no_field_gets_no_guess(tmp_path, capsys, change):
    # a guess from the path's shared beginning alone named objective.mode and trial.training.lr
    assert main(["validate", str(_study(tmp_path, change))]) == 2
    assert capsys.readouterr().err.strip().endswith(": unknown field")


def test_a_study_file_that_is_not_utf8_text_is_named(tmp_path, capsys):
    binary = tmp_path / "photo.yaml"
    binary.write_bytes(b"\xff\xd8\xff\xe0 a JPEG, not a study")
    assert main(["validate", str(binary)]) == 2
    error = capsys.readouterr().err.strip()
    assert error == f"smcl-tune: {binary}: not a UTF-8 text file"


@pytest.mark.parametrize("text", ["", "# a study, to be written\n", "---\n...\n"], ids=["0 bytes", "comments", "---"])
def test_an_empty_study_file_is_said_to_be_empty(tmp_path, capsys, text):
    # it said `name: Field required`
    empty = tmp_path / "study.yaml"
    empty.write_text(text)
    assert main(["validate", str(empty)]) == 2
    assert capsys.readouterr().err.strip() == f"smcl-tune: {empty}: the file is empty (it holds no YAML values)"


def test_a_misspelt_required_field_is_named_with_its_hint_not_as_missing(tmp_path, capsys):
    # `Name:` said `name: Field required` first, and on a line of its own
    path = _study(tmp_path, lambda r: r.update(Name=r.pop("name")))
    assert main(["validate", str(path)]) == 2
    assert capsys.readouterr().err.strip() == f"smcl-tune: {path}: Name: unknown field; did you mean name?"


def test_invalid_yaml_and_missing_file(tmp_path, capsys):
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: x\nsearch: {a: [1, 2\n")
    assert main(["validate", str(broken)]) == 2
    assert "broken.yaml: invalid YAML (line" in capsys.readouterr().err
    assert main(["validate", str(tmp_path / "nope.yaml")]) == 2
    assert "nope.yaml: file not found" in capsys.readouterr().err


@pytest.mark.slow
def test_run_refuses_a_bad_file_before_anything_starts(tmp_path):
    path = _study(tmp_path, _set("resources.gpus", 2))
    done = subprocess.run(
        [sys.executable, "-m", "smcl_tune.cli", "run", str(path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "resources.gpus" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "smcl-runs").exists()


@pytest.mark.parametrize("device", ["cpu", "auto"])
def test_a_study_without_gpus_trains_on_the_cpu_or_what_its_trials_find(tmp_path, capsys, device):
    assert main(["validate", str(_study(tmp_path, _set("trial.training.device", device)))]) == 0


def test_a_cuda_study_with_a_gpu_share_is_valid_on_a_machine_without_one(tmp_path, capsys):
    # the driver of a cluster study need not have a GPU: its trials run where Ray gives them one
    study = _study(tmp_path, lambda r: (r["trial"]["training"].update(device="cuda"), r["resources"].update(gpus=0.5)))
    assert main(["validate", str(study)]) == 0


def test_a_path_with_a_tilde_past_its_start_is_a_path_as_written(tmp_path, capsys):
    study = _study(tmp_path, _set("storage", str(tmp_path / "runs~1")))
    assert main(["validate", str(study)]) == 0


def test_baselines_and_confirmation_runs_may_train_on_the_whole_subset():
    from smcl_tune.studyfile.study import study_from_dict

    raw = yaml.safe_load(QUICKSTART.read_text())
    raw["baselines"] = [{"name": "ce", "overrides": {"method.name": "ce", "data.val_per_class": 0}, "seeds": [0, 1]}]
    raw["confirm"] = {"top_k": 1, "seeds": [1], "overrides": {"data.val_per_class": 0}}
    study = study_from_dict(raw)
    assert study.trial_config(raw["confirm"]["overrides"]).data.val_per_class == 0


@pytest.mark.parametrize(
    "where, change",
    [
        ("baselines[0].overrides.training", lambda r: r["baselines"][0]["overrides"].update(training={"lr": 0.01})),
        (
            "confirm.overrides.method",
            lambda r: r.update(confirm={"top_k": 1, "seeds": [1], "overrides": {"method": {}}}),
        ),
        ("search.data", lambda r: r["search"].update(data={"choice": [{"imbalance_factor": 10}, {"n_max": 50}]})),
        ("conditions.training", lambda r: r.update(conditions={"training": [{"epochs": 4}, {"epochs": 8}]})),
    ],
    ids=["a baseline", "confirmation", "a search", "conditions"],
)
def test_a_section_written_as_a_mapping_is_refused_naming_the_dotted_paths_to_use(where, change):
    # a mapping replaced the trial's whole section (a CE baseline trained the default 200 epochs at
    # batch 128 on 'auto'), and the fields inside it passed by the checks of what is measured
    from smcl_tune.studyfile.study import study_from_dict

    raw = yaml.safe_load(QUICKSTART.read_text())
    change(raw)
    with pytest.raises(ConfigError) as refused:
        study_from_dict(raw)
    section = where.rsplit(".", 1)[1]
    assert str(refused.value) == (
        f"{where}: names a section, not a field; give each field of it its own dotted path ({section}.FIELD: value)"
    )


def test_shipped_studies_are_valid(capsys, monkeypatch):
    from smcl_tune.studyfile.study import load_study

    studies = sorted(QUICKSTART.parent.glob("*.yaml"))
    assert len(studies) >= 7
    for study in studies:
        loaded = load_study(study)
        assert loaded.config.num_trials >= 1 or loaded.config.baselines
        if study.name.startswith("cifar"):  # imbalance factors are conditions, never searched
            assert "data.imbalance_factor" in loaded.config.conditions, study.name
    monkeypatch.chdir(QUICKSTART.parents[1])  # relative data roots are taken from the current folder
    assert main(["validate", str(QUICKSTART)]) == 0
    jpeg_study = QUICKSTART.parent / "cifar10_lt_jpeg.yaml"
    if (QUICKSTART.parents[2] / "shared" / "data" / "cifar10-jpeg" / "train.zip").exists():
        assert main(["validate", str(jpeg_study)]) == 0
    assert "is valid" in capsys.readouterr().out


def test_the_readmes_study_file_is_valid_as_a_user_copies_it(tmp_path, run_cli):
    readme = (QUICKSTART.parents[1] / "README.md").read_text()
    block = re.search(r"A study file \(see `studies/`\):\n\n```yaml\n(.*?)```", readme, re.DOTALL).group(1)
    (tmp_path / "study.yaml").write_text(block)
    done = run_cli("validate", "study.yaml", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "study 'cifar100_lt' is valid: 16 sampled trials, 1 baseline in each of 3 conditions" in done.stdout


def test_a_study_takes_the_ldam_drw_and_cmo_baselines_and_searches_over_cmo(tmp_path, capsys):
    def add_baselines(raw):
        raw["baselines"] += [
            {
                "name": "ldam_drw",
                "overrides": {"method.name": "ce", "method.classifier_loss": "ldam_drw", "method.drw_start_epoch": 6},
                "seeds": [0, 1, 2],
            },
            {"name": "cmo", "overrides": {"method.name": "cmo"}, "seeds": [0, 1, 2]},
        ]
        raw["search"]["method.name"] = {"choice": ["smcl", "cmo"]}

    assert main(["validate", str(_study(tmp_path, add_baselines))]) == 0
    printed = capsys.readouterr().out
    assert "ldam_drw" in printed and "cmo" in printed

    def linear_ldam(raw):
        add_baselines(raw)
        raw["baselines"][1]["overrides"]["model.classifier"] = "linear"

    assert main(["validate", str(_study(tmp_path, linear_ldam))]) == 2
    error = capsys.readouterr().err
    assert "baselines[1] (ldam_drw" in error and "model.classifier: LDAM's margins are in cosine units" in error


def test_an_asha_setting_under_fifo_is_named_as_doing_nothing(tmp_path, capsys):
    """A warning, not a refusal: a study started with one (it was accepted) must still resume."""
    path = _study(tmp_path, _set("scheduler", {"type": "fifo", "grace_period": 3}))
    assert main(["validate", str(path)]) == 0
    assert (
        "# warning: scheduler.grace_period: does nothing under scheduler.type: fifo, which stops no trial early "
        "(it is ASHA's)"
    ) in capsys.readouterr().out


@pytest.mark.parametrize("command", ["validate", "run", "prepare"])
def test_a_trial_file_given_as_a_study_is_named_as_one_in_one_line(tmp_path, capsys, command):
    path = tmp_path / "trial.yaml"
    path.write_text(yaml.safe_dump(yaml.safe_load(QUICKSTART.read_text())["trial"]))
    assert main([command, str(path)]) == 2
    assert capsys.readouterr().err == (
        f"smcl-tune: {path}: a trial file (its data, method, model, training at the top), not a study file; "
        f"train it with `smcl-tune trial {path}`, or put it under trial: in a study file with a name\n"
    )
