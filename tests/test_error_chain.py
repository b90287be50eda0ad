"""The error chain that the full-storage, locked-database and tracking-outage checks walk."""

import pytest

from smcl_tune.atomic_write import StorageFull, is_storage_full
from smcl_tune.errors import CHAIN_LIMIT, error_chain
from smcl_tune.study.retry import is_locked_error


class WrappedLikeRay(RuntimeError):
    """Ray's task errors keep the error the task raised as `.cause`, not as `__cause__`."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__("task failed")
        self.cause = cause


def _raised_from(outer: BaseException, inner: BaseException) -> BaseException:
    try:
        try:
            raise inner
        except BaseException as error:
            raise outer from error
    except BaseException as error:
        return error


def _raised_while_handling(outer: BaseException, inner: BaseException) -> BaseException:
    try:
        try:
            raise inner
        except BaseException:
            raise outer  # noqa: B904 (the implicit context is what is tested)
    except BaseException as error:
        return error


def test_the_chain_follows_causes_contexts_and_ray_s_cause():
    full = StorageFull("no space left on /data")
    error = _raised_while_handling(RuntimeError("mlflow"), _raised_from(ValueError("sqlalchemy"), WrappedLikeRay(full)))
    links = [str(link) for link in error_chain(error)]
    assert links == ["mlflow", "sqlalchemy", "task failed", "no space left on /data"]
    assert is_storage_full(error)


def test_a_locked_database_is_found_however_deep_it_is_wrapped():
    error = _raised_from(RuntimeError("Optuna's StorageInternalError"), OSError("database is locked"))
    assert is_locked_error(error)
    assert not is_locked_error(RuntimeError("no such table"))


@pytest.mark.timeout(10)
def test_a_chain_that_cycles_ends():
    first, second = ValueError("first"), ValueError("second")
    first.__context__, second.__context__ = second, first
    assert len(list(error_chain(first))) == CHAIN_LIMIT


def test_no_error_is_an_empty_chain():
    assert list(error_chain(None)) == []
