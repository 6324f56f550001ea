"""benchmarks/epopt_hopper.py end to end on a tiny budget: the ε = 1 warm-up run, EPOpt started
from it, the torso-mass sweep, ``--seed`` reaching every run and ``--only`` selecting a policy."""

from __future__ import annotations

import csv
import json
import sys

import pytest
import yaml


@pytest.fixture(scope="module")
def bench(load_benchmark):
    return load_benchmark("epopt_hopper")


def _run(bench, monkeypatch, *argv: str) -> None:
    monkeypatch.setattr(sys, "argv", ["epopt_hopper.py", *argv])
    bench.main()


def test_seeded_epopt_only_run_trains_warmup_then_epopt_and_sweeps(bench, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    out = tmp_path / "bench"
    _run(bench, monkeypatch, "--out", str(out), "--only", "epopt_e0.1", "--seed", "3", "--total-timesteps", "1",
         "--warmup-steps", "1", "--warmup-from", "scratch", "--n-models", "2", "--masses", "4:6:2", "--episodes", "1", "--workers", "1",
         "--checkpoint", "final")
    text = capsys.readouterr().out
    warm, epopt = out / "epopt_warmup_e1", out / "epopt_e0.1"
    assert not (out / "mass6_ppo").exists()  # --only: the mass-6 policy is neither trained nor evaluated
    for run in (warm, epopt):
        assert (run / "model.zip").is_file()
        assert yaml.safe_load((run / "run.yaml").read_text())["seed"] == 3
    ecfg = yaml.safe_load((epopt / "run.yaml").read_text())
    assert ecfg["init_from"] == str(warm) and ecfg["epopt"]["skip_iters"] == 0 and ecfg["epopt"]["n_models"] == 2
    wcfg = yaml.safe_load((warm / "run.yaml").read_text())
    assert wcfg["profile"] == "epopt_hopper" and wcfg.get("init_from") is None  # --warmup-from scratch
    budget = json.loads((out / "eval" / "budget.json").read_text())
    assert budget["seed"] == 3 and list(budget["policies"]) == ["epopt_e0.1"]
    assert "epopt_warmup_e1" in budget
    with open(out / "eval" / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {r["policy"] for r in rows} == {"epopt_e0.1"} and len(rows) == 2
    assert "| torso mass (kg) | epopt_e0.1 |" in text and "REDUCED BUDGET" in text
    assert "| 4 |" in text and "| 6 |" in text


@pytest.mark.parametrize("argv,msg", [
    (["--only", "epopt_e0.1", "--skip-train", "--run", "mass6_ppo=x"], "--run 'mass6_ppo=x'"),
    (["--only", "mass6_ppo", "--steps", "epopt_e0.1=10"], "--steps 'epopt_e0.1=10'"),
    (["--only", "ppo"], "invalid choice"),
    (["--seed", "-1"], "--seed -1"),
])
def test_bad_arguments_stop_before_training(bench, monkeypatch, tmp_path, capsys, argv, msg):
    with pytest.raises(SystemExit) as exc:
        _run(bench, monkeypatch, "--out", str(tmp_path / "b"), *argv)
    assert exc.value.code == 2 and msg in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def test_warmup_starts_from_the_mass6_policy_by_default(bench, monkeypatch, tmp_path, capsys):
    out = tmp_path / "bench"
    _run(bench, monkeypatch, "--out", str(out), "--total-timesteps", "1",
         "--warmup-steps", "1", "--n-models", "2", "--masses", "6:6:1", "--episodes", "1", "--workers", "1",
         "--checkpoint", "final")
    assert "from " + str(out / "mass6_ppo") in capsys.readouterr().out
    warm = yaml.safe_load((out / "epopt_warmup_e1" / "run.yaml").read_text())
    assert warm["init_from"] == str(out / "mass6_ppo")  # a tiny run never evaluates: its final policy
    assert yaml.safe_load((out / "epopt_e0.1" / "run.yaml").read_text())["init_from"] == str(out / "epopt_warmup_e1")


@pytest.mark.parametrize("argv,msg", [
    (["--only", "epopt_e0.1"], "holds no trained policy"),
    (["--warmup-from", "no/such/run"], "--warmup-from: init_from no/such/run: no model.zip"),
    (["--warmup-from", "mass6_ppo", "--warmup-steps", "0"], "needs a warm-up run"),
])
def test_bad_warmup_from_stops_before_training(bench, monkeypatch, tmp_path, capsys, argv, msg):
    with pytest.raises(SystemExit) as exc:
        _run(bench, monkeypatch, "--out", str(tmp_path / "b"), *argv)
    assert exc.value.code == 2 and msg in capsys.readouterr().err
    assert not (tmp_path / "b" / "epopt_warmup_e1").exists() and not (tmp_path / "b" / "epopt_e0.1").exists()
