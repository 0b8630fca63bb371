"""A finished search keeps only each trial's newest checkpoint (all are kept while it runs)."""

from poptune.storage.location import ExperimentLocation


def test_prune_keeps_the_newest_checkpoint_of_each_trial(tmp_path):
    for trial, count in (("MLP1Layer_a", 3), ("MLP2Layer_b", 1), ("MLP2Layer_c", 12)):
        for i in range(count):
            (tmp_path / trial / f"checkpoint_{i:06d}").mkdir(parents=True)
            (tmp_path / trial / f"checkpoint_{i:06d}" / "training_state.pt").write_bytes(b"x")
    (tmp_path / "MLP1Layer_a" / "result.json").write_text("{}")
    assert ExperimentLocation.of(tmp_path).prune_checkpoints() == 2 + 0 + 11
    assert sorted(p.name for p in (tmp_path / "MLP1Layer_a").iterdir()) == [
        "checkpoint_000002",
        "result.json",
    ]
    assert [p.name for p in (tmp_path / "MLP2Layer_b").iterdir()] == ["checkpoint_000000"]
    assert [p.name for p in (tmp_path / "MLP2Layer_c").iterdir()] == ["checkpoint_000011"]
