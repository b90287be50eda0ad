"""`smcl-tune validate` checks a study's data by its paths: nothing is downloaded or decoded."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from smcl_tune.cli import main

STUDIES = Path(__file__).resolve().parents[2] / "studies"


def _validate(study: Path, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "smcl_tune.cli", "validate", str(study)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_cifar_study_without_its_data_says_where_it_will_download_and_writes_nothing(tmp_path):
    done = _validate(STUDIES / "cifar100_lt.yaml", tmp_path)
    assert done.returncode == 0, done.stderr
    folder = tmp_path / "data" / "cifar-100-python"
    assert f"cifar100 is not in {folder} yet: it is fetched there before the study starts" in done.stdout
    fetched = [line for line in done.stdout.splitlines() if "fetched there" in line]
    assert len(fetched) == 1, done.stdout  # one note for the download, not one per condition
    counts = [line for line in done.stdout.splitlines() if "validation holds" in line]
    assert [line.split(":")[0] for line in counts] == [
        f"# condition imbalance_factor={factor}" for factor in (10, 50, 100)
    ], done.stdout  # each condition's own subset, named
    # per condition, and in all as `run` counts them: (16 + 2 x 3 seeds + 3 confirmed x 2 seeds) x 3
    valid = "# study 'cifar100_lt' is valid: 16 sampled trials, 2 baselines in each of 3 conditions (84 trials planned"
    assert valid in done.stdout
    assert list(tmp_path.iterdir()) == []  # no data folder, no download, no run state


def test_a_cifar_study_without_its_data_and_without_download_is_refused(tmp_path):
    study = yaml.safe_load((STUDIES / "cifar100_lt.yaml").read_text())
    study["trial"]["data"]["download"] = False
    path = tmp_path / "offline.yaml"
    path.write_text(yaml.safe_dump(study))
    done = _validate(path, tmp_path)
    assert done.returncode == 2
    error = done.stderr.strip()
    assert "trial.data.root" in error and "no cifar100 data" in error and "missing: train, test, meta" in error
    assert "Traceback" not in error and len(error.splitlines()) == 1


def test_the_valid_line_counts_in_words_a_user_reads(tmp_path):
    done = _validate(STUDIES / "quickstart.yaml", tmp_path)
    assert done.returncode == 0, done.stderr
    assert "# study 'quickstart' is valid: 8 sampled trials, 1 baseline, fingerprint" in done.stdout


def test_a_relative_data_root_not_found_says_which_folder_it_was_taken_from(tmp_path):
    done = _validate(STUDIES / "cifar10_lt_cpu.yaml", tmp_path)  # its root: ../shared/data/cifar10-jpeg
    assert done.returncode == 2
    error = done.stderr.strip()
    assert error.startswith(f"smcl-tune: {STUDIES / 'cifar10_lt_cpu.yaml'}: trial.data.root") and "\n" not in error
    assert (
        "../shared/data/cifar10-jpeg: image folder not found (a relative root is taken from the folder "
        f"smcl-tune runs in, {tmp_path}); "
    ) in error


@pytest.mark.parametrize(
    "data, expected",
    [
        ({"source": "image_folder"}, "expected train/ and test/ class folders or train.zip and test.zip"),
        ({"source": "file_list", "image_size": 32}, "expected train.txt, val.txt and test.txt in it"),
        ({"source": "cifar10"}, "expected the folder that holds cifar-10-batches-py"),
        ({"source": "cifar10", "download": True}, "expected the folder that holds cifar-10-batches-py"),
    ],
    ids=["image folder", "file list", "cifar", "cifar to download"],
)
def test_a_data_root_that_is_a_file_is_said_to_be_one(tmp_path, capsys, data, expected):
    # an image folder's said `image folder not found`, a file being there
    root = tmp_path / "images.tar"
    root.write_bytes(b"not a folder")
    study = yaml.safe_load((STUDIES / "quickstart.yaml").read_text())
    study["trial"]["data"] = {**study["trial"]["data"], "root": str(root), **data}
    for name in ("synthetic", "num_classes"):
        del study["trial"]["data"][name]
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study))
    assert main(["validate", str(path)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"smcl-tune: {path}: trial.data.root: {root}: a file, not a folder; {expected}"
    )


def _tiny_fused_study(tmp_path: Path, n_max: int) -> Path:
    study = {
        "name": "fused",
        "trial": {
            "data": {"source": "synthetic", "num_classes": 5, "n_max": n_max, "val_per_class": 5},
            "model": {"architecture": "tiny_cnn"},
            "method": {"name": "smcl"},
            "training": {"epochs": 8, "batch_size": 32, "device": "cpu"},
        },
        "search": {"method.temperature": {"loguniform": [0.03, 0.5]}, "training.batch_size": {"choice": [16, 32]}},
        "baselines": [
            {"name": "ce", "overrides": {"method.name": "ce"}},
            {"name": "wide", "overrides": {"training.batch_size": 64}, "seeds": [0, 1]},
            {"name": "narrow", "overrides": {"training.batch_size": 16}},  # the shape of some search trials
        ],
        "num_trials": 4,
        "max_concurrent": 3,
        "resources": {"cpus": 1, "fuse": 4},
    }
    path = tmp_path / "fused.yaml"
    path.write_text(yaml.safe_dump(study))
    return path


def test_a_fused_study_says_what_its_resources_count_and_what_splits_its_groups(tmp_path):
    done = _validate(_tiny_fused_study(tmp_path, n_max=200), tmp_path)
    assert done.returncode == 0, done.stderr
    notes = [line for line in done.stdout.splitlines() if line.startswith("# ")]
    assert notes[0].startswith("# fused: up to 4 trials of one shape (data, network, batch size,")
    assert notes[0].endswith("resources.cpus 1 and max_concurrent 3 count groups, so up to 12 trials run at once")
    assert notes[1:3] == [
        "# search.training.batch_size changes the shape: trials with different values train in different groups, "
        "each with its own members' CPUs (1 / 4 a trial)",
        "# baseline wide has a shape no search trial has: it trains in groups of its own runs only",
    ]  # the ce baseline differs in its method only, narrow in a batch size searched: they fuse with search trials
    assert not [line for line in notes if "narrow" in line]
    # one condition, a baseline over two seeds: 4 + 1 + 2 + 1 runs, as run counts them
    assert "is valid: 4 sampled trials, 3 baselines (8 trials planned in all, as run counts them)" in notes[-1]


def test_a_class_the_subset_leaves_empty_names_the_data_fields_not_a_root(tmp_path):
    done = _validate(_tiny_fused_study(tmp_path, n_max=60), tmp_path)  # 60 / 100 rounds class 4 to 0
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"smcl-tune: {tmp_path / 'fused.yaml'}: trial.data: class 4 (magenta_plus): the long-tailed subset keeps "
        "no training image of it (n_max * IF^(-i/(C-1)) rounds to 0); lower data.imbalance_factor or raise data.n_max"
    )


def test_a_cifar_copy_whose_files_are_not_cifars_is_refused_or_noted_to_be_fetched_again(tmp_path):
    folder = tmp_path / "data" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name in (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta"):
        (folder / name).write_text("junk")  # every name there: a copy cut short, or not CIFAR's
    study = yaml.safe_load((STUDIES / "cifar10_lt.yaml").read_text())
    offline = tmp_path / "offline.yaml"
    offline.write_text(
        yaml.safe_dump({**study, "trial": {**study["trial"], "data": {**study["trial"]["data"], "download": False}}})
    )
    done = _validate(offline, tmp_path)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert f"trial.data.root (condition imbalance_factor=10): {folder}: data_batch_1, data_batch_2, " in done.stderr
    assert "are not CIFAR's (another MD5: cut short, or other data); put CIFAR's own files there" in done.stderr
    done = _validate(STUDIES / "cifar10_lt.yaml", tmp_path)  # data.download: true
    assert done.returncode == 0
    assert "the folder is moved aside and cifar10 fetched again before the study starts" in done.stdout


def test_a_fused_study_of_baselines_only_names_the_baseline_of_another_shape(tmp_path):
    study = yaml.safe_load(_tiny_fused_study(tmp_path, n_max=200).read_text())
    study.update(search={}, num_trials=0)
    path = tmp_path / "baselines.yaml"
    path.write_text(yaml.safe_dump(study))
    done = _validate(path, tmp_path)
    assert done.returncode == 0, done.stderr
    named = [line for line in done.stdout.splitlines() if "has a shape" in line]
    assert named == [
        "# baseline wide has a shape the study's trial section does not have: it trains in groups of its own runs only",
        "# baseline narrow has a shape the study's trial section does not have: it trains in groups of its own runs "
        "only",
    ]


class _RunsCodeWhenLoaded:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_cifar_meta_file_made_to_run_code_is_not_run_by_validate(tmp_path):
    import pickle

    folder = tmp_path / "data" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    marker = tmp_path / "ran"
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": [_RunsCodeWhenLoaded(marker)]}))
    done = _validate(STUDIES / "cifar10_lt.yaml", tmp_path)  # data.download: true: fetched before the study starts
    assert done.returncode == 0, done.stderr
    assert not marker.exists()  # the meta file's class names are read as plain data only


def test_the_resolved_study_shows_texts_as_the_values_they_are_read_as(tmp_path, capsys):
    study = yaml.safe_load((STUDIES / "quickstart.yaml").read_text())
    study["trial"]["training"].update(lr="0.05", nesterov="yes", epochs="8")  # quoted in the file
    path = tmp_path / "quoted.yaml"
    path.write_text(yaml.safe_dump(study))
    assert main(["validate", str(path)]) == 0
    training = yaml.safe_load(capsys.readouterr().out)["trial"]["training"]
    assert (training["lr"], training["nesterov"], training["epochs"]) == (0.05, True, 8)
