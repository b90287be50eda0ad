"""Why `--address` could not join a Ray, in the one line the refusal gives: Ray's reason, not the
header of the traceback it quotes."""

from smcl_tune.study.ray_session import connection_reason


def test_a_wrong_token_is_named_not_the_traceback_header_ray_quotes():
    # the cause of Ray's ConnectionError for a cluster that refuses the client's token (Ray 2.60)
    cause = RuntimeError(
        "Failed to connect to GCS. Last connection error: Traceback (most recent call last):\n"
        '  File "python/ray/_raylet.pyx", line 3121, in ray._raylet.GcsClient.check_alive\n'
        "ray.exceptions.AuthenticationError: RPC error: InvalidAuthToken: Authentication token is missing or "
        "incorrect\n"
    )
    assert connection_reason(cause) == (
        "ray.exceptions.AuthenticationError: RPC error: InvalidAuthToken: Authentication token is missing or incorrect"
    )


def test_a_reason_without_a_traceback_is_its_first_line():
    assert connection_reason(TimeoutError("Timed out after 5 s\nretrying")) == "Timed out after 5 s"
