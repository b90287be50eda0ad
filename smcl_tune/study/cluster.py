"""The Ray cluster a study runs on: its hosts, and whether the study's storage reaches them all."""

from __future__ import annotations

import logging
from pathlib import Path

import psutil
import ray

from smcl_tune.config import ConfigError
from smcl_tune.study.paths import StudyPaths
from smcl_tune.study_config import Study

log = logging.getLogger(__name__)

NETWORK_FILESYSTEMS = ("nfs", "nfs4", "cifs", "smb3", "lustre", "gpfs", "beegfs", "ceph", "glusterfs", "fuse")


def filesystem_type(path: Path) -> str:
    """The type of the filesystem holding `path` (the longest mount point above it)."""
    path = path.resolve()
    best, kind = "", "unknown"
    for partition in psutil.disk_partitions(all=True):
        mount = partition.mountpoint
        if (path == Path(mount) or Path(mount) in path.parents) and len(mount) > len(best):
            best, kind = mount, partition.fstype
    return kind


def cluster_hosts() -> list[str]:
    """The addresses of the live nodes of the Ray cluster this driver is connected to."""
    return sorted({node["NodeManagerAddress"] for node in ray.nodes() if node.get("Alive")})


def check_cluster_storage(study: Study, paths: StudyPaths, hosts: list[str]) -> None:
    """Refuse a local-only storage folder when the Ray cluster spans several hosts.

    Trials write their checkpoints to the storage; a trial moved to another host must read them.
    """
    if len(hosts) <= 1 or "://" in paths.storage:
        return
    kind = filesystem_type(Path(paths.storage))
    if not kind.startswith(NETWORK_FILESYSTEMS):
        raise ConfigError(
            f"{study.source}: storage: {paths.storage} is a local folder ({kind}), but the Ray cluster spans "
            f"{len(hosts)} hosts ({', '.join(hosts)}) whose trials could not reach its checkpoints; set storage to a "
            "shared folder (NFS) mounted at the same path on every node, or a URI such as s3://bucket/smcl-runs"
        )
    if paths.tracking_uri.startswith("sqlite:"):
        log.warning(
            "MLflow uses the embedded sqlite store on this host; only this driver writes to it, but it is "
            "lost with this host: on clusters set tracking.uri to a tracking server"
        )
