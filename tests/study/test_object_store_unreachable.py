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
