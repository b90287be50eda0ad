"""Checks that hold for the whole suite, and fixtures shared across the test folders."""

import atexit
import contextlib
import functools
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

from tests.fixtures.ci import skip_unless_ci


def _share_the_cores_among_workers() -> None:
    """Under pytest-xdist, each worker's torch (and each process it starts) takes its share of the
    cores, not all of them: two workers of 2 threads each on 2 cores made the in-process training
    tests about 2.5x slower (OpenMP threads spinning against each other: the every-method lockstep
    test took 61 s beside a copy of itself at torch's default, 24 s at one thread). Set before any
    test module imports torch; the subprocesses the tests start inherit it."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
    if workers > 0 and "OMP_NUM_THREADS" not in os.environ:
        os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // workers))


_share_the_cores_among_workers()


def _cache_in_a_temporary_folder() -> None:
    """smcl-tune's cache (the empty MLflow store new studies copy) in a folder of the session's,
    for every process the tests start, not in the user's home."""
    if "SMCL_TUNE_CACHE" not in os.environ:
        folder = tempfile.mkdtemp(prefix="smcl-cache-")
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        os.environ["SMCL_TUNE_CACHE"] = folder


_cache_in_a_temporary_folder()

# Fixtures shared across the folders: tiny studies and the CLI (studies.py), small MLflow stores
# written as `smcl-tune run` writes them (stores.py).
pytest_plugins = (
    "tests.fixtures.studies",
    "tests.fixtures.stores",
    "tests.fixtures.postgres",
    "tests.fixtures.cluster_stores",
    "tests.fixtures.archives",
)

ROOT = Path(__file__).resolve().parents[1]
RUN_STATE = ("mlruns", "mlartifacts", "smcl-runs", "mlflow.db")
# The full CIFAR-10 as JPEG zips; CI has it beside the repository.
CIFAR10_JPEG = Path(os.environ.get("SMCL_CIFAR10_JPEG", ROOT.parent / "shared" / "data" / "cifar10-jpeg"))


# the shipped quickstart study: about 2 minutes beside the other worker, the suite's longest test
LONGEST_FILE = "test_quickstart.py"
RAY_FILES: set[Path] = set()  # the files with a test marked `ray`, under pytest-xdist


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest file first, then the other files with Ray tests, then the rest, each in its
    usual order: under `make test`'s two workers the long studies start early and the quick files
    fill the gaps, where collection order left the quickstart study running alone at the end."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        return  # one process: collection order
    RAY_FILES.update(item.path for item in items if item.get_closest_marker("ray"))
    items.sort(key=lambda item: (item.path.name != LONGEST_FILE, item.path not in RAY_FILES))


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Under pytest-xdist a worker is handed the files in the order above, so once it reaches a file
    with no Ray test, no later file of its has one: the session's Ray (`shared_ray`) is stopped
    there, not kept idle to the end (an idle local Ray spends about 1.9 CPU-s a minute, and the
    files without Ray take each worker the last minutes of the suite). A test that asks for it after
    all starts it again."""
    if RAY_FILES and item.path not in RAY_FILES:
        _stop_the_shared_ray()


@pytest.fixture(scope="session", autouse=True)
def repository_stays_clean():
    """Tests keep Ray, MLflow and Optuna state in temporary folders, never in the repository."""
    before = {name for name in RUN_STATE if (ROOT / name).exists()}
    yield
    written = {name for name in RUN_STATE if (ROOT / name).exists()} - before
    assert not written, f"a test wrote run state into the repository: {sorted(written)}"


@pytest.fixture(scope="session")
def cifar10_jpeg() -> Path:
    """The CIFAR-10 JPEG copy (SMCL_CIFAR10_JPEG, default ../shared/data/cifar10-jpeg)."""
    if not (CIFAR10_JPEG / "train.zip").is_file():
        skip_unless_ci(f"the CIFAR-10 JPEG copy is not at {CIFAR10_JPEG} (set SMCL_CIFAR10_JPEG)")
    return CIFAR10_JPEG


def _tiny_config(**training) -> dict:
    """A trial of 5 synthetic 16-px classes, the tiny CNN, on the CPU: about a second per epoch."""
    return {
        "data": {
            "source": "synthetic",
            "num_classes": 5,
            "n_max": 60,
            "imbalance_factor": 10,
            "val_per_class": 6,
            "many_above": 30,
            "few_below": 10,
            "synthetic": {"image_size": 16, "test_per_class": 12, "val_pool_per_class": 12},
        },
        "model": {"architecture": "tiny_cnn"},
        "method": {"name": "smcl", "mask_start_epoch": 0, "mask_end_epoch": 5, "mask_probability": 1.0},
        "training": {
            "epochs": 2,
            "batch_size": 32,
            "lr": 0.05,
            "warmup_epochs": 0,
            "milestones": [],
            "milestone_factors": [],
            "device": "cpu",
            **training,
        },
    }


@pytest.fixture(scope="session")
def tiny_config():
    """A factory of tiny trial configs; keyword arguments set `training` fields."""
    return _tiny_config


@pytest.fixture(scope="session")
def two_one_epoch_trials(tiny_config):
    """`two_one_epoch_trials(storage)`: a study of two one-epoch tiny trials side by side (FIFO),
    kept in `storage`: what the cluster tests submit."""
    return functools.partial(_two_one_epoch_trials, tiny_config)


def _two_one_epoch_trials(tiny_config, storage: str) -> dict:
    return {
        "name": "tiny",
        "trial": tiny_config(epochs=1, num_threads=1),
        "search": {"method.temperature": {"loguniform": [0.05, 0.5]}},
        "num_trials": 2,
        "max_concurrent": 2,
        "resources": {"cpus": 1},
        "scheduler": {"type": "fifo"},
        "storage": storage,
        "seed": 0,
    }


def _shared_ray_address() -> str:
    import ray

    from smcl_tune.study.ray_session import init_ray
    from tests.fixtures.cluster_stores import S3_ENVIRONMENT

    if not ray.is_initialized():
        # the S3 test server's keys (tests/fixtures/cluster_stores.py) in its workers' environment,
        # which they inherit from this process: a study stored in that server's bucket joins it too
        with _environment(S3_ENVIRONMENT):
            init_ray(None, "WARNING")
    return ray.get_runtime_context().gcs_address


@contextlib.contextmanager
def _environment(names: dict[str, str]):
    before = {name: os.environ.get(name) for name in names}
    os.environ.update(names)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture
def shared_ray() -> str:
    """The session's local Ray, started by the first test that asks for it and kept (as Ray's own
    `ray_start_regular_shared`): an in-process study runs on it (`init_ray` keeps a Ray that is up),
    and a study in a subprocess joins it through the address this returns (`joining_env`). A test
    that needs a Ray of its own shuts it down first, and a worker stops it at its first file without
    Ray tests (pytest_runtest_setup); the next test that asks starts it again."""
    return _shared_ray_address()


@pytest.fixture(scope="module")
def shared_ray_for_module() -> str:
    """`shared_ray` for a module's fixtures (a finished study that many tests check)."""
    return _shared_ray_address()


@pytest.fixture
def joining_env(shared_ray) -> dict[str, str]:
    """The environment of a `smcl-tune run` subprocess that joins the session's Ray (RAY_ADDRESS)
    instead of starting one of its own: for the tests whose subject is not where Ray runs."""
    return {**os.environ, "RAY_ADDRESS": shared_ray}


@pytest.fixture(scope="session", autouse=True)
def _shared_ray_stops_at_the_end():
    yield
    _stop_the_shared_ray()


def _stop_the_shared_ray() -> None:
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        ray.shutdown()


@pytest.fixture
def ray_starts(monkeypatch):
    """How many times an in-process `smcl-tune run` got as far as starting (or joining) Ray: a
    refusal "before anything starts" leaves it at 0, whether or not the session's Ray is up."""
    from smcl_tune.study import runner

    calls = []
    real = runner.init_ray

    def counted(*arguments, **keywords):
        calls.append(arguments)
        return real(*arguments, **keywords)

    monkeypatch.setattr(runner, "init_ray", counted)
    return calls


@pytest.fixture
def stop_at_teardown():
    """`stop_at_teardown(process)`: a server a test started is stopped with every process it started
    (MLflow's uvicorn workers and huey consumers), however the test ended; a failed test would
    otherwise leave them serving."""
    import psutil

    started = []
    yield started.append
    for process in started:
        if process.poll() is None:
            members = [psutil.Process(process.pid), *psutil.Process(process.pid).children(recursive=True)]
            for member in members:
                with contextlib.suppress(psutil.NoSuchProcess):
                    member.kill()
            process.wait()
