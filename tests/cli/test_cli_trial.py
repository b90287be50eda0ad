"""`smcl-tune trial FILE.yaml`: one trial from the command line, as a user runs it."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
import yaml

pytestmark = [pytest.mark.slow]


@pytest.fixture
def trial(tiny_config) -> dict:
    """A tiny trial of 4 classes (counts 40 / 25 / 15 / 10): groups many 2 / medium 1 / few 1."""
    config = tiny_config(num_threads=1, batch_size=16)
    config["data"].update(num_classes=4, n_max=40, imbalance_factor=4, val_per_class=5, many_above=20, few_below=12)
    config["method"] = {"name": "smcl", "mask_start_epoch": 0, "mask_end_epoch": 2}
    return config


def _in_process(arguments: list[str], capsys) -> tuple[int, str, str]:
    """`smcl-tune ARGUMENTS` in this process (one case of each kind runs as a subprocess too)."""
    from smcl_tune.cli import main

    code = main(arguments)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _smcl_tune(*arguments, cwd, **options):
    return subprocess.run(
        [sys.executable, "-m", "smcl_tune.cli", *arguments],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        **options,
    )


def test_trial_prints_its_result_and_writes_json(tmp_path, trial):
    config = tmp_path / "trial.yaml"
    config.write_text(yaml.safe_dump(trial))
    done = _smcl_tune("trial", str(config), "--epochs", "1", "--output", str(tmp_path / "result.json"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "status: completed" in done.stdout and "epochs: 1, selected on validation: epoch 1" in done.stdout
    assert "shot groups (classes): many 2 / medium 1 / few 1" in done.stdout
    test_line = next(line for line in done.stdout.splitlines() if line.startswith("test"))
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["status"] == "completed" and result["epochs_completed"] == 1
    assert result["best_epoch"] == 0  # the printed 'epoch 1': the file counts from 0, as the README says
    assert test_line.split()[1] == f"{100 * result['test']['top1']:.1f}"
    assert len(result["history"]) == 1 and len(result["test_confusion"]) == 4


def test_trial_with_a_bad_config_exits_2_naming_the_field(tmp_path, trial):
    config = tmp_path / "trial.yaml"
    config.write_text(yaml.safe_dump({**trial, "method": {"temperature": -1}}))
    done = _smcl_tune("trial", str(config), cwd=tmp_path)  # the subprocess case of a refusal
    assert done.returncode == 2
    assert "method.temperature" in done.stderr and "Traceback" not in done.stderr


def test_a_study_file_given_to_trial_is_named_as_one(tmp_path, trial, capsys):
    study = tmp_path / "study.yaml"
    study.write_text(yaml.safe_dump({"name": "s", "trial": trial, "search": {}, "num_trials": 1}))
    code, _, error = _in_process(["trial", str(study)], capsys)
    assert code == 2
    assert error.strip() == (
        f"smcl-tune: {study}: a study file (it has a trial: section), not a trial file; run the study with "
        f"`smcl-tune run {study}`, or give `smcl-tune trial` a file of its trial section alone"
    )


def test_an_empty_trial_file_is_refused_before_a_default_trial_trains(tmp_path, capsys):
    empty = tmp_path / "trial.yaml"
    empty.write_text("")
    code, out, error = _in_process(["trial", str(empty)], capsys)
    assert code == 2 and out == ""
    assert error.strip() == f"smcl-tune: {empty}: the file is empty (it holds no YAML values)"


NO_CUDA = "this machine has no CUDA device (torch.cuda.is_available() is False)"
NO_MPS = "this machine has no MPS device (Apple's GPU)"


@pytest.mark.parametrize(
    "device, missing, here",
    [
        ("cuda", NO_CUDA, torch.cuda.is_available()),
        ("cuda:0", NO_CUDA, torch.cuda.is_available()),
        ("mps", NO_MPS, torch.backends.mps.is_available()),
    ],
)
def test_a_device_this_machine_lacks_is_refused_before_it_trains(tmp_path, trial, capsys, device, missing, here):
    if here:
        pytest.skip(f"this machine has a {device} device")
    trial["training"]["device"] = device
    config = tmp_path / "trial.yaml"
    config.write_text(yaml.safe_dump(trial))
    code, out, error = _in_process(["trial", str(config)], capsys)
    assert code == 2 and out == ""
    assert error.strip() == (
        f"smcl-tune: {config}: training.device: {device}, but {missing}; set training.device: auto or cpu"
    )


@pytest.mark.parametrize("where", ["missing folder", "a file as its folder", "a folder"])
def test_an_output_that_cannot_be_written_is_refused_before_the_trial_trains(tmp_path, trial, capsys, where):
    config = tmp_path / "trial.yaml"
    config.write_text(yaml.safe_dump(trial))
    (tmp_path / "notes.txt").write_text("kept")
    output = {
        "missing folder": tmp_path / "results" / "r.json",
        "a file as its folder": tmp_path / "notes.txt" / "r.json",
        "a folder": tmp_path,
    }[where]
    code, out, error = _in_process(["trial", str(config), "--output", str(output)], capsys)
    assert code == 2 and out == ""  # no epoch trained, no result printed
    assert error.startswith(f"smcl-tune: --output {output}: ") and len(error.strip().splitlines()) == 1
    assert sorted(path.name for path in tmp_path.iterdir()) == ["notes.txt", "trial.yaml"]


def test_an_output_in_a_folder_that_takes_no_new_file_is_refused_before_the_trial_trains(tmp_path, trial, capsys):
    config = tmp_path / "trial.yaml"
    config.write_text(yaml.safe_dump(trial))
    # /proc takes no new file, even from root, to whom its mode says it is writable
    why = "cannot write it (No such file or directory)" if os.access("/proc", os.W_OK) else "not writable by this user"
    code, out, error = _in_process(["trial", str(config), "--output", "/proc/out.json"], capsys)
    assert code == 2 and out == ""  # no epoch trained, no result printed
    assert error == f"smcl-tune: --output /proc/out.json: {why}\n"


def test_data_that_is_not_there_is_refused_naming_the_file_and_field_before_the_trial_trains(
    tmp_path, trial, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "trial.yaml"
    config.write_text(yaml.safe_dump({**trial, "data": {"source": "image_folder", "root": "photos"}}))
    code, out, error = _in_process(["trial", str(config)], capsys)
    assert code == 2 and out == ""
    assert error.strip() == (
        f"smcl-tune: {config}: data.root: photos: image folder not found (a relative root is taken from the "
        f"folder smcl-tune runs in, {tmp_path}); expected train/ and test/ class folders or train.zip and test.zip"
    )


def test_epochs_from_the_command_line_are_checked_with_the_rest_of_the_file(tmp_path, trial, capsys):
    config = tmp_path / "trial.yaml"
    config.write_text(yaml.safe_dump(trial))
    code, _, error = _in_process(["trial", str(config), "--epochs", "0"], capsys)
    assert code == 2
    assert "training.epochs: Input should be greater than or equal to 1, got 0" in error
    assert "Traceback" not in error and len(error.strip().splitlines()) == 1


def test_ctrl_c_stops_a_trial_with_exit_1(tmp_path, trial):
    config = tmp_path / "trial.yaml"
    config.write_text(yaml.safe_dump({**trial, "training": {**trial["training"], "epochs": 500}}))
    process = subprocess.Popen(
        [sys.executable, "-m", "smcl_tune.cli", "trial", str(config)],
        cwd=tmp_path,
        # as from a terminal: a launcher that ran these tests as a background job would have
        # left SIGINT ignored, and the child would inherit that
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for line in process.stderr:  # the log: wait for the first finished epoch
            if "epoch 0:" in line:
                break
        time.sleep(0.5)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 1
        assert "interrupted" in process.stderr.read() and "Traceback" not in process.stdout.read()
    finally:
        if process.poll() is None:
            process.kill()


def test_a_cmo_trial_with_ldam_drw_runs_from_the_command_line(tmp_path, trial, capsys):
    config = tmp_path / "trial.yaml"
    trial["method"] = {
        "name": "cmo",
        "mask_probability": 1.0,
        "mask_start_epoch": 0,
        "mask_end_epoch": 2,
        "classifier_loss": "ldam_drw",
        "drw_start_epoch": 1,
    }
    config.write_text(yaml.safe_dump(trial))
    code, out, error = _in_process(
        ["trial", str(config), "--epochs", "2", "--output", str(tmp_path / "result.json")], capsys
    )
    assert code == 0, error[-2000:]
    assert "status: completed" in out
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["epochs_completed"] == 2 and result["history"][0]["masked_step_fraction"] == 1.0

    trial["model"]["classifier"] = "linear"
    config.write_text(yaml.safe_dump(trial))
    code, _, error = _in_process(["trial", str(config)], capsys)
    assert code == 2 and "Traceback" not in error
    assert "model.classifier: LDAM's margins are in cosine units" in error


def test_cuda_graphs_on_a_cpu_only_trial_are_refused_naming_the_field(tmp_path, trial, capsys):
    config = tmp_path / "trial.yaml"
    config.write_text(yaml.safe_dump({**trial, "training": {**trial["training"], "device": "cpu", "cuda_graph": True}}))
    code, _, error = _in_process(["trial", str(config)], capsys)
    assert code == 2
    assert "training.cuda_graph: CUDA graphs need a CUDA device" in error
    assert "Traceback" not in error and len(error.strip().splitlines()) == 1


def test_a_trial_that_asks_for_cuda_graphs_without_a_gpu_says_in_one_line_that_it_steps_eagerly(tmp_path, trial):
    config = tmp_path / "trial.yaml"
    config.write_text(
        yaml.safe_dump({**trial, "training": {**trial["training"], "device": "auto", "cuda_graph": True}})
    )
    done = _smcl_tune(
        "trial", str(config), "--epochs", "1", cwd=tmp_path, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    )
    assert done.returncode == 0, done.stderr[-2000:]
    said = [line for line in done.stderr.splitlines() if "cuda_graph" in line]
    assert len(said) == 1
    assert said[0].endswith(
        "training.cuda_graph: the steps run eagerly (CUDA graphs need a CUDA device, and this trial runs on cpu)"
    )
    assert "status: completed" in done.stdout


def test_an_output_that_is_the_trial_file_itself_is_refused_before_it_trains(tmp_path, trial, capsys):
    config = tmp_path / "trial.yaml"
    config.write_text(yaml.safe_dump(trial))
    written = config.read_text()
    code, out, error = _in_process(["trial", str(config), "--output", str(config)], capsys)
    assert code == 2 and out == ""
    assert error.strip() == f"smcl-tune: --output {config}: that is the trial file itself; name another file"
    assert config.read_text() == written


def test_an_image_the_trial_cannot_read_ends_it_in_one_line_naming_the_file_exit_2(tmp_path, trial):
    """As the README says: exit 2 here, where `run` stops its study resumably with exit 1."""
    from PIL import Image

    for split in ("train", "test"):
        for name in ("ant", "bee"):
            for index in range(6):
                path = tmp_path / "images" / split / name / f"{index}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.new("RGB", (16, 16), (40 * index, 90, 200)).save(path)
    (tmp_path / "images" / "train" / "bee" / "3.png").write_bytes(b"not an image")  # not the first: listed, not read
    trial["data"] = {"source": "image_folder", "root": str(tmp_path / "images"), "n_max": 6, "imbalance_factor": 2}
    trial["data"].update(val_per_class=1, many_above=5, few_below=2)
    config = tmp_path / "trial.yaml"
    config.write_text(yaml.safe_dump(trial))
    done = _smcl_tune("trial", str(config), "--epochs", "1", cwd=tmp_path)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        f"smcl-tune: {tmp_path / 'images' / 'train' / 'bee' / '3.png'}: cannot read the image (not an image "
        "format PIL knows, or damaged)"
    )
