"""The HTML report opened in headless Chromium: tables and every plot render, no console errors."""

import re
import shutil
import subprocess

import optuna
import pytest

from smcl_tune.cli import main
from tests.fixtures.ci import skip_unless_ci

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
    "--virtual-time-budget=15000",
]


def _optuna_studies(path):
    """One Optuna study per condition of the store's study, as `smcl-tune run` keeps them."""
    url = f"sqlite:///{path}"
    for condition in ("imbalance_factor=10", "imbalance_factor=100"):
        study = optuna.create_study(
            study_name=f"lt/{condition}",
            storage=url,
            direction="maximize",
            sampler=optuna.samplers.RandomSampler(seed=0),
        )
        for _ in range(8):
            trial = study.ask()
            temperature = trial.suggest_float("method.temperature", 0.03, 0.5, log=True)
            weight = trial.suggest_float("method.loss_weight", 0.1, 2.0)
            study.tell(trial, 0.5 + temperature - 0.01 * weight)
    return url


@pytest.mark.browser
@pytest.mark.slow
def test_html_report_renders_its_tables_and_plots_in_chromium(tmp_path, build_store):
    if CHROMIUM is None:
        skip_unless_ci("Chromium is not installed (.ci/run installs Debian's chromium)")
    storage = tmp_path / "store"
    build_store(storage, optuna_storage=_optuna_studies(tmp_path / "optuna.db"))
    report = tmp_path / "report.html"
    assert main(["leaderboard", "lt", "--storage", str(storage), "--format", "html", "--output", str(report)]) == 0
    page = report.read_text()
    assert "<script src=" not in page  # self-contained: plotly.js is inlined, nothing is fetched
    assert "hyperparameter importance unavailable" not in page

    screenshot = tmp_path / "report.png"
    common = [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    shot = subprocess.run(
        [*common, "--window-size=1300,4000", f"--screenshot={screenshot}", report.as_uri()],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert shot.returncode == 0 and screenshot.stat().st_size > 20000
    dom = subprocess.run([*common, "--dump-dom", report.as_uri()], capture_output=True, text=True, timeout=180)
    assert dom.returncode == 0
    console = [line for line in (shot.stderr + dom.stderr).splitlines() if ":CONSOLE" in line]
    assert not [line for line in console if re.search(r"error|uncaught", line, re.IGNORECASE)], console

    rendered = dom.stdout
    assert rendered.count('class="dataframe leaderboard"') == 1 and "trial-003" in rendered
    titles = [
        "Many-shot vs few-shot test accuracy",
        "val_balanced_accuracy against temperature",
        "Hyperparameter importance for val_balanced_accuracy (imbalance_factor=10)",
        "Hyperparameter importance for val_balanced_accuracy (imbalance_factor=100)",
        "Learning curves of the top trials, condition imbalance_factor=10",
        "Learning curves of the top trials, condition imbalance_factor=100",
        "Per-class test accuracy of the best trial (trial-003 [imbalance_factor=10])",
        "Per-class test accuracy of the best trial (trial-001 [imbalance_factor=100])",
    ]
    drawn = re.findall(r'<text class="gtitle"[^>]*>([^<]*)<', rendered)  # titles plotly drew into its SVG
    for title in titles:
        assert any(text.startswith(title) for text in drawn), (title, drawn)
    assert len(drawn) == len(titles)


def test_pareto_front_keeps_the_trials_no_other_beats_on_both_many_and_few(tmp_path, build_store):
    import base64
    import json

    import numpy as np
    import pandas as pd

    from smcl_tune.report.html import format_html
    from smcl_tune.report.leaderboard import load_leaderboard
    from smcl_tune.report.plots import pareto_front

    points = pd.DataFrame(
        {"trial": list("abcde"), "test_many": [0.9, 0.8, 0.7, 0.85, 0.6], "test_few": [0.1, 0.3, 0.35, 0.05, 0.2]}
    )
    assert pareto_front(points, "test_many", "test_few")["trial"].tolist() == ["c", "b", "a"]

    board = load_leaderboard(build_store(tmp_path / "store"), "lt")
    page = format_html(board)
    figure = next(
        json.loads(blob)
        for blob in re.findall(r"Plotly.newPlot\(\s*\"[^\"]+\",\s*(\[.*?\]),\s*\{", page)
        if "Pareto front" in blob
    )
    front = next(trace for trace in figure if trace["name"] == "Pareto front [imbalance_factor=100]")

    def values(array):  # plotly writes numeric arrays as base64 with a dtype
        return np.frombuffer(base64.b64decode(array["bdata"]), dtype=array["dtype"]).tolist()

    # many / few of the store's finished trials: trial-000 80/20, trial-001 85/25, trial-003 90/NaN
    # (no few-shot class), baseline-ce 90/5: trial-001 and baseline-ce are on the front.
    assert sorted(zip(values(front["x"]), values(front["y"]))) == [(85.0, 25.0), (90.0, 5.0)]


def test_the_report_shows_each_conditions_mask_gallery_of_its_best_trial_that_has_one(tmp_path, build_store):
    import io

    from mlflow.tracking import MlflowClient
    from PIL import Image

    storage = tmp_path / "store"
    uri = build_store(storage)
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("lt")
    runs = {run.info.run_name: run.info.run_id for run in client.search_runs([experiment.experiment_id])}
    picture = io.BytesIO()
    Image.new("RGB", (40, 20), (200, 30, 30)).save(picture, format="PNG")
    for name in ("trial-000 [imbalance_factor=100]", "baseline-ce [imbalance_factor=100]"):
        (tmp_path / "mask_gallery.png").write_bytes(picture.getvalue())
        client.log_artifact(runs[name], str(tmp_path / "mask_gallery.png"))
    report = tmp_path / "report.html"
    assert main(["leaderboard", "lt", "--storage", str(storage), "--format", "html", "--output", str(report)]) == 0
    page = report.read_text()
    # trial-000 ranks above the CE baseline at IF 100 (objective 0.62 against 0.5); IF 10 has no gallery
    assert "<h2>The masks of trial-000 [imbalance_factor=100]</h2>" in page
    assert page.count('class="gallery"') == 1 and "data:image/png;base64," in page
    # the study's best trial is at IF 10: its gallery comes first, and IF 100's is still shown
    (tmp_path / "mask_gallery.png").write_bytes(picture.getvalue())
    client.log_artifact(runs["trial-003 [imbalance_factor=10]"], str(tmp_path / "mask_gallery.png"))
    assert main(["leaderboard", "lt", "--storage", str(storage), "--format", "html", "--output", str(report)]) == 0
    page = report.read_text()
    headings = [line for line in page.splitlines() if line.startswith("<h2>The masks of")]
    assert headings == [
        "<h2>The masks of trial-003 [imbalance_factor=10]</h2>",
        "<h2>The masks of trial-000 [imbalance_factor=100]</h2>",
    ], headings
    assert page.count('class="gallery"') == 2 and page.count("Does the mask find the object?") == 1
    caption = page.split("<h2>The masks of", 1)[1].split("</p>", 1)[0]
    assert "With <code>erase</code> (the paper's reading): the image, its saliency map, the mask removed" in caption
