"""Which errors of an object store mean that it does not answer (waited for), and which are its
answer (a refusal: the trial fails at once, as before)."""

from smcl_tune.study.object_store_outage import is_object_store_unreachable


def _wrapped(text: str) -> RuntimeError:
    try:
        raise OSError(text)
    except OSError as error:
        try:
            raise RuntimeError("Ray's checkpoint upload failed") from error
        except RuntimeError as wrapper:
            return wrapper


def test_a_store_that_does_not_answer_is_told_from_one_that_refuses():
    gone = (  # as pyarrow put them when the S3 server's port was closed, and a peer reset mid-transfer
        "When getting information for key 'runs/tiny' in bucket 'smcl': AWS Error NETWORK_CONNECTION during "
        "HeadObject operation: curlCode: 7, Could not connect to server"
    )
    reset = "AWS Error NETWORK_CONNECTION during PutObject operation: curlCode: 56, Failure when receiving data"
    assert is_object_store_unreachable(_wrapped(gone)) and is_object_store_unreachable(OSError(reset))
    denied = "AWS Error ACCESS_DENIED during HeadObject operation: No response body."
    missing = "Bucket 'no-such-bucket' not found"
    assert not is_object_store_unreachable(_wrapped(denied)) and not is_object_store_unreachable(OSError(missing))
    assert not is_object_store_unreachable(RuntimeError("could not connect"))  # not an error of the store's I/O


def test_a_busy_or_failing_store_is_waited_for_too():
    for text in (
        "AWS Error INTERNAL_FAILURE during PutObject operation: We encountered an internal error",
        "AWS Error THROTTLING during PutObject operation: Rate exceeded",
        "AWS Error SERVICE_UNAVAILABLE during HeadObject operation",
        "When uploading part for key 'runs/x': AWS Error UNKNOWN (HTTP status 502) during UploadPart operation",
    ):
        assert is_object_store_unreachable(OSError(text)), text
    assert not is_object_store_unreachable(OSError("AWS Error UNKNOWN (HTTP status 403) during HeadObject operation"))


def test_only_rays_records_of_the_store_itself_are_hidden():
    import logging

    from smcl_tune.study.object_store_outage import _HideUnreachableStore

    def record(name: str, message: str, error: BaseException | None = None) -> logging.LogRecord:
        info = (type(error), error, None) if error else None
        return logging.LogRecord(name, logging.ERROR, __file__, 1, message, None, info)

    hide = _HideUnreachableStore()
    store_error = OSError("AWS Error NETWORK_CONNECTION during PutObject operation: curlCode: 7, Could not connect")
    assert not hide.filter(
        record("ray.train._internal.storage", "Caught exception when creating directory", store_error)
    )
    assert not hide.filter(record("ray.train._internal.syncer", f"Last sync command failed:\n{store_error}"))
    unrelated = OSError("timed out")  # a trial's own socket, not the store's
    assert hide.filter(record("ray.tune.execution.tune_controller", "Trial task failed", unrelated))
    assert hide.filter(record("smcl_tune.study.trainable", "waiting for the object store", store_error))
