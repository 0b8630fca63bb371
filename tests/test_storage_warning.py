"""The warning for a local --storage on a cluster that spans machines (no Ray, no network)."""

from __future__ import annotations

import pytest

from poptune.cluster.storage import (
    address_host,
    is_this_machine,
    local_storage_warning,
    remote_hosts,
)
from poptune.driver.settings import SearchSettings

HERE = {"127.0.0.1", "10.0.0.1"}  # this machine, as the tests below pretend


def here(host: str) -> bool:
    return host in HERE


@pytest.mark.parametrize(
    ("address", "host"),
    [
        ("10.0.0.5:6379", "10.0.0.5"),
        ("ray://head.example:10001", "head.example"),
        ("[fd00::5]:6379", "fd00::5"),
        ("head.example", "head.example"),
    ],
)
def test_address_host(address, host):
    assert address_host(address) == host


def test_remote_hosts_come_from_the_address_and_the_nodes():
    assert remote_hosts("10.0.0.5:6379", ["10.0.0.1"], is_local=here) == ["10.0.0.5"]
    assert remote_hosts(None, ["10.0.0.1", "10.0.0.7", ""], is_local=here) == ["10.0.0.7"]
    assert remote_hosts("auto", ["10.0.0.1"], is_local=here) == []


@pytest.mark.parametrize("storage", ["runs", "/data/runs", "file:///data/runs"])
def test_local_storage_on_a_remote_cluster_is_warned_about(storage):
    settings = SearchSettings(storage=storage, address="10.0.0.5:6379")
    warning = local_storage_warning(settings, "10.0.0.5:6379", ["10.0.0.5"], is_local=here)
    assert warning is not None
    assert f"--storage {storage}" in warning and "10.0.0.5" in warning
    assert "s3://" in warning and "shared file system" in warning


def test_a_head_here_with_workers_elsewhere_is_warned_about_too():
    """`ray attach` then `--address auto` on the head: the address is local, the workers not."""
    settings = SearchSettings(storage="runs", address="auto")
    nodes = ["10.0.0.1", "10.0.0.7", "10.0.0.8", "10.0.0.9", "10.0.0.10"]
    warning = local_storage_warning(settings, "auto", nodes, is_local=here)
    assert warning is not None and "10.0.0.10, 10.0.0.7, 10.0.0.8 and 1 more" in warning


def test_a_head_alone_whose_autoscaler_adds_workers_is_warned_about():
    """cluster.yaml's shape before its workers are up: only the head (this machine) is live,
    yet every trial will run on a machine the autoscaler starts."""
    settings = SearchSettings(storage="runs", address="auto")
    warning = local_storage_warning(
        settings, "auto", ["10.0.0.1"], autoscaled=("cpu", "gpu"), is_local=here
    )
    assert warning is not None and "the cluster's autoscaler adds cpu/gpu nodes" in warning
    assert "use --storage s3://BUCKET/PREFIX" in warning
    bucket = SearchSettings(storage="s3://bucket/runs", address="auto")
    assert local_storage_warning(bucket, "auto", ["10.0.0.1"], autoscaled=("cpu",)) is None


@pytest.mark.parametrize(
    ("storage", "address", "nodes"),
    [
        ("s3://bucket/runs", "10.0.0.5:6379", ["10.0.0.5"]),  # remote storage: always fine
        ("gs://bucket/runs", None, ["10.0.0.7"]),
        ("runs", None, ["127.0.0.1"]),  # the private local Ray
        ("runs", "127.0.0.1:6379", ["10.0.0.1", "127.0.0.1"]),  # nodes all on this machine
    ],
)
def test_no_warning_where_every_node_sees_the_storage(storage, address, nodes):
    settings = SearchSettings(storage=storage, address=address)
    assert local_storage_warning(settings, address, nodes, is_local=here) is None


def test_is_this_machine_on_real_interfaces():
    assert is_this_machine("127.0.0.1") and is_this_machine("localhost")
    assert not is_this_machine("198.51.100.7")  # TEST-NET-2, a documentation range
    assert not is_this_machine("no-such-host.invalid")
