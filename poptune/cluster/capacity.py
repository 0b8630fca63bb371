"""What a cluster can hold: the one place trial slots are counted and a search is checked to fit.

A slot is room for one trial: ``--cpus-per-trial`` CPUs and ``--gpus-per-trial`` GPUs on one
node. Slots are counted per node (a node with 6 CPUs holds one 4-CPU trial, not 1.5), and on an
autoscaling cluster the nodes its autoscaler may still add count too. The same check runs twice:
before any slow work against this machine (`poptune.api.preflight`), and once Ray reports the
cluster it joined (`poptune.driver.runner`).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from poptune.cluster.slots import node_slots
from poptune.errors import UsageError

if TYPE_CHECKING:
    from poptune.cluster.autoscale import Autoscaling


class TrialRequest(Protocol):
    """What a search asks of a cluster (SearchSettings is one): the cluster's modules take these
    few numbers, not the search's settings, so that joining a cluster needs nothing of driver/."""

    @property
    def cpus_per_trial(self) -> float: ...
    @property
    def gpus_per_trial(self) -> float: ...
    @property
    def max_concurrent(self) -> int | None: ...
    @property
    def num_samples(self) -> int: ...


@dataclass(frozen=True)
class ClusterInfo:
    address: str | None  # None: a private local Ray started for this run (or this machine)
    cpus: float
    gpus: float
    nodes: int
    hosts: tuple[str, ...] = ()  # IP address of every live node
    node_resources: tuple[tuple[float, float], ...] = ()  # (CPUs, GPUs) of every live node

    @property
    def local(self) -> bool:
        return self.address is None


def cluster_slots(
    settings: TrialRequest, cluster: ClusterInfo, autoscaling: Autoscaling | None = None
) -> int:
    """Trials the cluster holds at once now, or once its autoscaler has added every node."""
    cpus, gpus = settings.cpus_per_trial, settings.gpus_per_trial
    nodes = cluster.node_resources or ((cluster.cpus, cluster.gpus),)
    slots = sum(node_slots({"CPU": c, "GPU": g}, cpus, gpus) for c, g in nodes)
    if autoscaling is not None:
        slots = max(slots, autoscaling.max_slots(cpus, gpus))
    return slots


def trial_slots(
    settings: TrialRequest, cluster: ClusterInfo, autoscaling: Autoscaling | None = None
) -> int:
    """Trials that run at once: the cluster's slots (its autoscaler's nodes counted), capped by
    --max-concurrent and --num-samples; at least one. What `poptune estimate` schedules over."""
    slots = cluster_slots(settings, cluster, autoscaling)
    if settings.max_concurrent:
        # No slot up yet: the search starts on --max-concurrent's word that the autoscaler
        # adds nodes for that many trials (check_fits), so that many run once they are up.
        slots = min(slots, settings.max_concurrent) if slots else settings.max_concurrent
    return max(1, min(slots, settings.num_samples))


def max_concurrent(
    settings: TrialRequest, cluster: ClusterInfo, autoscaling: Autoscaling | None = None
) -> int:
    """--max-concurrent, else every slot the cluster has or can have. Setting it matters: Tune
    wraps the searcher in a ConcurrencyLimiter, and only then asks for all slots' trials at once
    (with a searcher and no limit it starts one trial at a time, each waiting for the one before
    to come up: seconds per slot, minutes for a cluster of hundreds), and on an autoscaling
    cluster those waiting trials are the demand that makes the autoscaler add nodes. A driver
    that cannot see the autoscaler's configuration (not on the head, not KubeRay) gets the live
    nodes' slots: --max-concurrent lets such a cluster grow further."""
    if settings.max_concurrent:
        return settings.max_concurrent
    return max(1, cluster_slots(settings, cluster, autoscaling))


def check_fits(
    settings: TrialRequest, cluster: ClusterInfo, autoscaling: Autoscaling | None = None
) -> None:
    """Refuse a search no trial of which could ever start, or a --max-concurrent this machine
    cannot hold. On an autoscaling cluster, nodes its autoscaler can add count (cluster.yaml's
    GPU workers, or CPU workers with min_workers: 0 and a head without CPUs for trials). A
    cluster whose node types poptune cannot read (an autoscaler that publishes them neither in
    ~/ray_bootstrap_config.yaml nor to Ray) may still add nodes: there an explicit
    --max-concurrent starts the search anyway, as Ray Tune alone would, and its trials wait."""
    where = "this machine" if cluster.local else "the cluster"
    for resource, per_trial, has in (
        ("GPU", settings.gpus_per_trial, cluster.gpus),
        ("CPU", settings.cpus_per_trial, cluster.cpus),
    ):
        if per_trial <= 0 or has >= per_trial:
            continue
        node_type = autoscaling.node_type_with(resource, per_trial) if autoscaling else None
        if node_type is not None:
            print(
                f"poptune: no node with {per_trial:g} {resource}(s) for a trial is up yet; the "
                f"autoscaler starts {node_type} nodes for the trials (minutes on a cloud)",
                file=sys.stderr,
                flush=True,
            )
            return
        unknown = autoscaling is None and not cluster.local  # nodes may come, of unknown size
        if unknown and settings.max_concurrent:
            up = f"no {resource}s up yet" if has <= 0 else f"only {has:g} {resource}(s) up"
            print(
                f"poptune: the cluster has {up}; the trials wait for the nodes its autoscaler "
                f"adds (up to {settings.max_concurrent} at once, --max-concurrent)",
                file=sys.stderr,
                flush=True,
            )
            return
        raise UsageError(_refusal(resource, per_trial, has, cluster.local, unknown))
    if settings.max_concurrent and cluster.local:
        slots = cluster_slots(settings, cluster)
        if settings.max_concurrent > slots:
            raise UsageError(
                f"--max-concurrent {settings.max_concurrent}: {where} fits only {slots} "
                f"trial(s) at --cpus-per-trial {settings.cpus_per_trial:g}; use at most {slots}"
            )


def _refusal(
    resource: str, per_trial: float, has: float, local: bool, unknown_types: bool = False
) -> str:
    option = f"--{resource.lower()}s-per-trial {per_trial:g}"
    if unknown_types:
        # An autoscaler poptune cannot read may still add the nodes: say how to start anyway.
        anyway = "pass --max-concurrent K to start anyway and let the autoscaler add"
        if resource == "GPU":
            return (
                f"{option}: the cluster has {has:g} GPU(s) and no node types poptune can "
                f"read, so no trial can start now; drop the option, add GPU nodes, or {anyway} "
                "them"
            )
        if has <= 0:
            return (
                f"{option}: the cluster has no CPUs up yet and no node types poptune can read; "
                f"{anyway} nodes"
            )
        return (
            f"{option}: the cluster has only {has:g} CPU(s) and no node types poptune can "
            f"read; lower it, or {anyway} bigger nodes"
        )
    if resource == "GPU" and local:
        return (
            f"{option}: this machine has {has:g} GPU(s) that torch can use, so no trial could "
            "ever start; drop the option, or join a cluster with GPU nodes with --address"
        )
    if resource == "GPU":
        return (
            f"{option}: the cluster has {has:g} GPU(s), so no trial could ever start; "
            "drop the option or add GPU nodes"
        )
    if local:
        return (
            f"{option}: this machine has only {has:g} CPU(s); use at most {has:g}, "
            "or join a bigger cluster with --address"
        )
    return f"{option}: the cluster has only {has:g} CPU(s); lower it"
