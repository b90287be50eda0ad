"""The Ray cluster a study runs on: its hosts, and whether the study's storage reaches them all."""

from __future__ import annotations

import logging
from pathlib import Path

import psutil
import ray
from ray.tune.stopper import Stopper

from smcl_tune.errors import ConfigError
from smcl_tune.store.paths import StudyPaths
from smcl_tune.studyfile.study import Study

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


def check_local_resources(study: Study) -> None:
    """Refuse a trial that no slot of this machine can hold: on a local Ray it would wait forever."""
    resources = study.config.resources
    cpus = psutil.cpu_count() or 1
    asker = "a group of fused trials" if resources.fuse > 1 else "a trial"
    if resources.cpus > cpus:
        raise ConfigError(
            f"{study.source}: resources.cpus: {asker} asks for {resources.cpus:g} CPUs and this machine has {cpus}; "
            f"ask for at most {cpus}, or run on a Ray cluster (--address)"
        )
    if resources.gpus > 0:
        import torch

        if torch.cuda.device_count() == 0:
            raise ConfigError(
                f"{study.source}: resources.gpus: {asker} asks for {resources.gpus:g} of a GPU and this machine has "
                "none; set resources.gpus: 0, or run on a Ray cluster with GPUs (--address)"
            )


def warn_unplaceable(study: Study) -> None:
    """On a cluster: say so when no node can hold a trial now (an autoscaler may add one)."""
    resources = study.config.resources
    fits = [
        node
        for node in ray.nodes()
        if node.get("Alive")
        and node["Resources"].get("CPU", 0) >= resources.cpus
        and node["Resources"].get("GPU", 0) >= resources.gpus
    ]
    if not fits:
        log.warning(
            "no node of the Ray cluster can hold a trial (%g CPUs, %g GPU) now: trials wait until the "
            "cluster's autoscaler adds such a node, and forever if it has none",
            resources.cpus,
            resources.gpus,
        )


class LocalStorageGuard(Stopper):
    """Stops the study when a trial reports from a host the cluster did not have at the start,
    while the storage is a local folder: a cluster that autoscales from its head alone passes
    the check at start, and its new nodes could not reach the checkpoints."""

    def __init__(self, hosts: list[str]) -> None:
        self.hosts = set(hosts)
        self.foreign: str | None = None

    def __call__(self, trial_id: str, result: dict) -> bool:
        host = result.get("node_ip")
        if host and host not in self.hosts:
            self.foreign = host
        return self.foreign is not None

    def stop_all(self) -> bool:
        return self.foreign is not None


def cluster_hosts() -> list[str]:
    """The addresses of the live nodes of the Ray cluster this driver is connected to."""
    return sorted({node["NodeManagerAddress"] for node in ray.nodes() if node.get("Alive")})


def storage_is_local(paths: StudyPaths) -> bool:
    """A folder on this host's own disk (not a URI, not a network filesystem)."""
    return not paths.remote and not filesystem_type(Path(paths.storage)).startswith(NETWORK_FILESYSTEMS)


def local_storage_message(study: Study, paths: StudyPaths, hosts: list[str]) -> str:
    return (
        f"{study.source}: storage: {paths.storage} is a local folder ({filesystem_type(Path(paths.storage))}), but "
        f"the Ray cluster spans {len(hosts)} hosts ({', '.join(hosts)}) whose trials could not reach its checkpoints; "
        "set storage to a shared folder (NFS) mounted at the same path on every node, or a URI such as "
        "s3://bucket/smcl-runs"
    )


def check_cluster_storage(study: Study, paths: StudyPaths, hosts: list[str]) -> None:
    """Refuse a local-only storage folder when the Ray cluster spans several hosts.

    Trials write their checkpoints to the storage; a trial moved to another host must read them.
    """
    if len(hosts) <= 1:
        return
    if storage_is_local(paths):
        raise ConfigError(local_storage_message(study, paths, hosts))
    if paths.tracking_uri.startswith("sqlite:"):
        log.warning(
            "MLflow uses the embedded sqlite store on this host; only this driver writes to it, but it is "
            "lost with this host: on clusters set tracking.uri to a tracking server"
        )
