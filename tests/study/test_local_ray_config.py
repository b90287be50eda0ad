"""The local Ray's system config: its driver waits 5 s for a GCS that is gone, unless the user set
Ray's own variable for it."""

from smcl_tune.study.ray_session import _local_ray_config


def test_the_local_ray_waits_seconds_for_its_gcs_unless_the_user_says_otherwise(monkeypatch):
    monkeypatch.delenv("RAY_gcs_rpc_server_reconnect_timeout_s", raising=False)
    assert _local_ray_config()["gcs_rpc_server_reconnect_timeout_s"] == 5
    monkeypatch.setenv("RAY_gcs_rpc_server_reconnect_timeout_s", "120")
    assert "gcs_rpc_server_reconnect_timeout_s" not in _local_ray_config()  # Ray reads the user's variable
    assert _local_ray_config()["enable_worker_prestart"] is False
