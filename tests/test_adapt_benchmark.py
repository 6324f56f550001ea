"""benchmarks/adaptation.py: per-seed runs with their own baselines, and the worst-seed summary."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def bench(load_benchmark):
    return load_benchmark("adaptation")


def test_summary_judges_the_target_by_the_worst_seed(bench):
    rows = [{"task": "digits", "method": "a", "gap_closed": g} for g in (0.9, 0.4)]
    rows += [{"task": "digits", "method": "b", "gap_closed": g} for g in (0.72, 0.71)]
    rows += [{"task": "arm", "method": "a", "gap_closed": g} for g in (0.8, 0.69)]
    lines = bench.summary_lines(rows)
    assert "digits a: gap closed mean 65%, worst 40% over 2 seed(s)" in lines
    assert "digits: best method b closes >= 71% of the gap in every seed (target >= 70%: met)" in lines
    assert "arm: best method a closes >= 69% of the gap in every seed (target >= 70%: NOT met)" in lines


def test_runs_each_seed_with_its_own_baselines(bench, tmp_path: Path):
    import torch

    from sim2real.adapt.trainer import read_checkpoint

    torch.set_num_threads(1)
    rows = bench.run_task("digits", ["selfens"], tmp_path, steps=2, progress=False, seeds=[0, 3])
    assert [(r["method"], r["seed"], r["steps"]) for r in rows] == [("selfens", 0, 2), ("selfens", 3, 2)]
    for r in rows:
        state = read_checkpoint(tmp_path / "selfens" / f"seed{r['seed']}" / "checkpoint.pt")
        assert state["config"]["seed"] == r["seed"] and state["step"] == 2
        assert 0.0 <= r["adapted"] <= 1.0 and r["source_only"] is not None and r["oracle"] is not None
    assert len(list((tmp_path / "baselines").iterdir())) == 2  # one baseline pair per seed
    assert rows[0]["source_only"] != rows[1]["source_only"] or rows[0]["oracle"] != rows[1]["oracle"]
