"""Interrupting `smcl-tune run` (SIGINT, or SIGKILL of the driver) and running it again resumes."""

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient

from smcl_tune.results import RESULT_FILE
from smcl_tune.store.paths import default_tracking_uri

pytestmark = [pytest.mark.ray, pytest.mark.slow]

EPOCHS = 5


def _start(study: Path, environment: dict[str, str] | None, *options: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "smcl_tune.cli", "run", str(study), *options],
        cwd=study.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env=environment,
    )


def _wait_mid_study(client: MlflowClient, name: str, trial_runs, timeout: float = 480) -> None:
    """Until one trial has finished and another has checkpointed at least two epochs."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            runs = trial_runs(client, name)
        except Exception:  # the store may not exist yet
            runs = []
        finished = [r for r in runs if r.info.status != "RUNNING"]
        running = [
            r for r in runs if r.info.status == "RUNNING" and len(client.get_metric_history(r.info.run_id, "loss")) >= 2
        ]
        if finished and running:
            return
        time.sleep(0.3)
    raise AssertionError("the study did not reach the middle in time")


def _wait_until_settled(folder: Path, quiet_s: float = 3.0, timeout: float = 90) -> None:
    """Until nothing under `folder` changes for `quiet_s`: Ray's workers run in process groups of
    their own, outlive the driver's group for a moment, and may still write a checkpoint."""

    def snapshot() -> set:
        entries = set()
        for path in folder.rglob("*"):
            with contextlib.suppress(FileNotFoundError):  # deleted while listed: a change all the same
                stat = path.stat()
                entries.add((str(path), stat.st_mtime_ns, stat.st_size))
        return entries

    deadline = time.time() + timeout
    last, quiet_since = snapshot(), time.time()
    while time.time() < deadline and time.time() - quiet_since < quiet_s:
        time.sleep(0.5)
        now = snapshot()
        if now != last:
            last, quiet_since = now, time.time()


def _lose_the_checkpoint_rays_state_names(experiment: Path) -> None:
    """What a driver killed between Ray's deleting a trial's previous checkpoint and its saving the
    experiment state leaves (CI hit it): the state names checkpoint k, only checkpoint k+1 is on disk.
    Ray's state names the oldest checkpoint of an unfinished trial; it is moved one index up, and a
    newer one the driver had not registered yet is deleted."""
    _wait_until_settled(experiment)
    for trial_dir in experiment.glob("train_study_trial_*"):
        oldest, *newer = sorted(trial_dir.glob("checkpoint_*")) or [None]
        if oldest is None or (oldest / RESULT_FILE).exists():  # a finished trial
            continue
        for checkpoint in newer:
            shutil.rmtree(checkpoint)
        index = int(oldest.name.removeprefix("checkpoint_"))
        oldest.rename(trial_dir / f"checkpoint_{index + 1:06d}")


def _kill_group(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


# Not ("SIGKILL", 1): a study of unfused trials killed with its Ray and resumed is
# tests/study/test_cluster_stores.py's, and the repair of Ray's state after a kill is this fused
# case's and tests/study/test_checkpoint_repair.py's (a study launch is some 30 s of the suite).
@pytest.mark.parametrize(("how", "fuse"), [("SIGINT", 1), ("SIGKILL", 2)])
def test_interrupted_study_resumes_without_rerunning_or_duplicating(
    tmp_path, how, fuse, tiny_study, trial_runs, request
):
    # Ctrl-C reaches a driver and the local Ray it started (one process group), as on a laptop; a
    # driver killed alone (`kill -9`, the out-of-memory killer) is one that joined a Ray (a cluster's
    # head), here the session's, so that its Ray outlives it as a cluster's does. Fused at 2, the
    # killed driver's groups go with it, and each member resumes from its own checkpoint in a new one.
    environment = None if how == "SIGINT" else request.getfixturevalue("joining_env")
    name = f"resume-{how.lower()}" + ("" if fuse == 1 else f"-fused{fuse}")
    resources = {"cpus": 1, "fuse": fuse}
    base = tiny_study(tmp_path, name=name, num_trials=3, scheduler={"type": "fifo"}, resources=resources)
    base.write_text(base.read_text().replace("epochs: 3", f"epochs: {EPOCHS}"))
    client = MlflowClient(tracking_uri=default_tracking_uri(tmp_path / "smcl-runs"))

    first = _start(base, environment, *(["--restart"] if how == "SIGINT" else []))
    try:
        _wait_mid_study(client, name, trial_runs)
        if how == "SIGINT":
            os.killpg(first.pid, signal.SIGINT)
            assert first.wait(timeout=120) == 1  # README: 1, a study that did not finish
            said = first.stderr.read()
            advice = [line for line in said.splitlines() if "resume" in line and line.startswith(("smcl-tune", "the"))]
            assert len(advice) == 1 and advice[0].endswith(f"resume with: smcl-tune run {base}"), said[-3000:]
            assert "Tuner.restore" not in said and "\x1b[" not in said  # no Ray API, no colour codes in a pipe
        else:
            first.kill()  # the driver alone, as `kill -9 <pid>` would
            first.wait(timeout=30)
    finally:
        _kill_group(first)  # what the interruption left of a local Ray
    if how == "SIGKILL":
        # Nothing to change when the running trial finished before the kill landed (its epochs
        # are short); tests/study/test_checkpoint_repair.py pins the repair's choices.
        _lose_the_checkpoint_rays_state_names(tmp_path / "smcl-runs" / name)
    before = {run.info.run_name: run for run in trial_runs(client, name)}
    finished_before = {n for n, r in before.items() if r.info.status == "FINISHED"}
    assert finished_before

    second = _start(base, environment)
    try:
        assert second.wait(timeout=600) == 0, second.stderr.read()[-3000:]
    finally:
        _kill_group(second)
    if how == "SIGINT":  # its own local Ray: Ray Tune's "Restored on HOST from checkpoint" lines stay in the workers
        said = second.stderr.read()
        assert "Restored on" not in said and "resuming study" in said, said[-3000:]

    after = trial_runs(client, name)
    assert sorted(run.info.run_name for run in after) == ["trial-000", "trial-001", "trial-002"]
    assert all(run.info.status == "FINISHED" for run in after), [
        (r.info.run_name, r.info.status, r.data.tags.get("smcl.state")) for r in after
    ]
    for run in after:
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "loss")]
        assert sorted(set(steps)) == list(range(EPOCHS)), (run.info.run_name, steps)
        if run.info.run_name in finished_before:
            assert len(steps) == EPOCHS, (run.info.run_name, steps)  # a finished trial was not run again
        else:
            # A trial interrupted after two epochs goes on from a checkpoint, not from scratch: its
            # first epoch is logged once. Epochs after the last checkpoint Ray had saved are redone.
            assert steps.count(0) == 1, (run.info.run_name, steps)
    optuna_study = optuna.load_study(
        study_name=name, storage=f"sqlite:///{tmp_path / 'smcl-runs' / name / 'optuna.db'}"
    )
    states = [trial.state for trial in optuna_study.get_trials()]
    assert states == [optuna.trial.TrialState.COMPLETE] * 3


def test_a_study_killed_before_ray_saved_its_state_runs_every_trial_when_run_again(
    tmp_path, tiny_study, trial_runs, joining_env
):
    # Ray writes its Tuner file when the study starts, asks the searcher for a trial and saves its
    # experiment state at the fit's first step. Killed before that save, Ray's restore found no state
    # and started over with one trial planned: the study ran one trial and ended, at every later run.
    base = tiny_study(tmp_path, name="early", num_trials=2, scheduler={"type": "fifo"})
    experiment = tmp_path / "smcl-runs" / "early"
    client = MlflowClient(tracking_uri=default_tracking_uri(tmp_path / "smcl-runs"))
    first = _start(base, joining_env)
    try:
        deadline = time.time() + 120
        while not list(experiment.glob("experiment_state-*.json")):
            assert first.poll() is None and time.time() < deadline, "the study never saved Ray's state"
            time.sleep(0.02)
        first.kill()  # the driver alone, as `kill -9 <pid>` would
        first.wait(timeout=30)
    finally:
        _kill_group(first)
    _wait_until_settled(experiment, quiet_s=1.0)
    # The kill an instant earlier, before the save: Ray's state files are not there
    for saved in ("experiment_state-*.json", "search_gen_state-*.json", "searcher-state-*.pkl", "basic-variant-*"):
        for path in experiment.glob(saved):
            path.unlink()
    optuna_db = f"sqlite:///{experiment / 'optuna.db'}"
    asked = optuna.load_study(study_name="early", storage=optuna_db).get_trials()
    assert [trial.state for trial in asked] == [optuna.trial.TrialState.RUNNING]  # the trial asked for

    second = _start(base, joining_env)
    try:
        assert second.wait(timeout=600) == 0, second.stderr.read()[-3000:]
    finally:
        _kill_group(second)
    said = second.stderr.read()
    assert "Failed to restore" not in said and "Ray's experiment starts anew" in said, said[-3000:]
    assert "Optuna trial 0, left running by an interrupted driver, continues" in said, said[-3000:]
    after = trial_runs(client, "early")
    assert sorted((run.info.run_name, run.info.status) for run in after) == [
        ("trial-000", "FINISHED"),
        ("trial-001", "FINISHED"),
    ]
    trials = optuna.load_study(study_name="early", storage=optuna_db).get_trials()
    assert [trial.state for trial in trials] == [optuna.trial.TrialState.COMPLETE] * 2
    assert trials[0].params == asked[0].params  # the trial asked for ran with its own values
    assert trials[0].params != trials[1].params  # the next is not drawn again (test_searcher: as uninterrupted)
