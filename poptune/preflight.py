"""The checks that refuse a search before any slow work (no data loaded, no Ray started): the
storage is a folder, MLflow is there if asked for, the cluster's address answers, the trials
fit this machine."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from poptune import uri
from poptune.cluster import capacity
from poptune.cluster.capacity import ClusterInfo
from poptune.errors import UsageError

if TYPE_CHECKING:
    from poptune.driver.settings import SearchSettings


def preflight(settings: SearchSettings) -> None:
    """Refuse what cannot run before any slow work: no data loaded, no Ray started.

    Gross mistakes only; the exact checks against the cluster Ray reports still run in
    `run_search`. Each check here can only refuse what that later check would refuse too.
    """
    require_tracking(settings)
    require_storage_folder(settings.storage)
    address = settings.address or os.environ.get("RAY_ADDRESS") or None
    if address:
        from poptune.cluster.session import _check_reachable

        _check_reachable(address)  # a closed port: one line now, not after loading the data
        return
    # A private local Ray gets at most this machine's CPUs (fewer under a cgroup quota), and
    # the GPUs torch can use (whatever Ray would detect); torch is imported only to count them.
    gpus = 0
    if settings.gpus_per_trial > 0:
        import torch

        gpus = torch.cuda.device_count()
    machine = ClusterInfo(address=None, cpus=os.cpu_count() or 1, gpus=gpus, nodes=1)
    capacity.check_fits(settings, machine)


def require_storage_folder(storage: str) -> None:
    """A local --storage must be a folder, or a path where one can be made: a file there (or
    above it) would fail only when the search first writes, as an internal error."""
    if uri.is_remote(storage):
        return
    path = uri.local_path(storage).expanduser()
    for place in (path, *path.parents):
        if place.exists():
            if not place.is_dir():
                where = "is a file" if place == path else f"is inside {place}, a file"
                raise UsageError(
                    f"--storage {storage}: {where}, not a folder; pass a folder (it is created "
                    "if missing) or a URI such as s3://bucket/runs"
                )
            return


def require_tracking(settings: SearchSettings) -> None:
    """--mlflow-tracking-uri needs MLflow installed: refused now, not after the search."""
    if settings.mlflow_tracking_uri:
        from poptune.tracking import require_mlflow  # MLflow itself only if asked for

        require_mlflow(settings.mlflow_tracking_uri)
