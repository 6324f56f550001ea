"""sim2real evaluate: nominal / profile / 2x2 sweep, CSV + JSON + PNG + markdown, local workers and Ray."""

from __future__ import annotations

import csv
import json

import pytest

from sim2real.errors import ConfigError
from sim2real.train.config import parse_run_config
from sim2real.train.sweep import SweepAxis, build_conditions
from sim2real.train.trainer import train

ENV = {"id": "sim2real/KukaReach-v0", "kwargs": {"max_episode_steps": 10}}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    cfg = parse_run_config({"env": ENV, "robot": "kuka_iiwa", "algo": "ppo", "net_arch": [16],
                            "hyperparameters": {"n_steps": 32, "batch_size": 32, "n_epochs": 1},
                            "total_timesteps": 32, "normalize": True, "eval": {"freq": 0, "episodes": 1}})
    out = tmp_path_factory.mktemp("pol")
    train(cfg, out, progress_bar=False, log=lambda s: None)
    return out


def test_sweep_axis_parse():
    assert SweepAxis.parse("link_mass=0.5:2:4").values == (0.5, 1.0, 1.5, 2.0)
    for bad in ("link_mass", "x=1:2", "x=a:2:3", "x=1:2:0"):
        with pytest.raises(ConfigError, match="--sweep"):
            SweepAxis.parse(bad)


def test_conditions_pin_values():
    conds = build_conditions("peng2018_arm", [SweepAxis.parse("link_mass=0.5:2:2"), SweepAxis.parse("latency=0:0.04:2")],
                             robot="kuka_iiwa")
    labels = [c.label for c in conds]
    assert labels[:2] == ["nominal", "profile:peng2018_arm"]
    assert len(conds) == 6
    cell = conds[-1]
    assert cell.values == {"link_mass": 2.0, "latency": 0.04}
    assert cell.profile["params"]["link_mass"]["low"] == cell.profile["params"]["link_mass"]["high"] == 2.0
    assert cell.profile["params"]["sweep_latency"]["value"] == 0.04
    assert "action_latency" not in cell.profile["params"]  # the profile's own latency entry is replaced
    assert "joint_damping" in cell.profile["params"]  # the rest of the profile stays randomized
    with pytest.raises(ConfigError, match="unknown sweep parameter 'bogus'"):
        build_conditions(None, [SweepAxis.parse("bogus=1:2:2")], robot="kuka_iiwa")


def test_two_policies_2x2_sweep(run_dir, tmp_path, capsys):
    from sim2real.cli.main import main

    out = tmp_path / "eval"
    rc = main(["evaluate", "--policy", f"a={run_dir}", "--policy", f"b={run_dir / 'model.zip'}",
               "--episodes", "2", "--sweep", "link_mass=0.5:2:2", "--sweep", "joint_damping=1:5:2",
               "--out", str(out), "--workers", "1"])
    assert rc == 0
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert len(rows) == 2 * (1 + 4)
    cells = [r for r in rows if r["param_1"]]
    assert {(r["param_1"], r["param_2"]) for r in cells} == {("link_mass", "joint_damping")}
    assert {(float(r["value_1"]), float(r["value_2"])) for r in cells} == {(0.5, 1), (0.5, 5), (2, 1), (2, 5)}
    for r in rows:
        assert 0.0 <= float(r["success_rate"]) <= 1.0 and int(r["episodes"]) == 2
    # same policy, same seeds: identical numbers for both labels (deterministic evaluation)
    by = {(r["policy"], r["condition"]): r["mean_return"] for r in rows}
    assert all(by[("a", c)] == by[("b", c)] for (_, c) in by)
    data = json.loads((out / "results.json").read_text())
    assert data["meta"]["env_id"] == "sim2real/KukaReach-v0" and len(data["results"]) == 10
    for pol in ("a", "b"):
        png = out / f"heatmap_{pol}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (out / "report.md").read_text()
    assert "| condition | a success | b success |" in md and "link_mass=0.5,joint_damping=5" in md


def test_local_worker_processes(run_dir, tmp_path):
    from sim2real.train.evaluate import evaluate_policies

    evaluate_policies([("p", str(run_dir))], episodes=1, sweeps=["joint_damping=1:5:2"], out=tmp_path / "par",
                      workers=2)
    evaluate_policies([("p", str(run_dir))], episodes=1, sweeps=["joint_damping=1:5:2"], out=tmp_path / "seq")
    par = list(csv.DictReader((tmp_path / "par" / "results.csv").open()))
    assert len(par) == 3 and par == list(csv.DictReader((tmp_path / "seq" / "results.csv").open()))


def test_line_plot_for_one_param(run_dir, tmp_path):
    from sim2real.train.evaluate import evaluate_policies

    paths = evaluate_policies([(None, str(run_dir))], profile="peng2018_arm", episodes=1,
                              sweeps=["latency=0:0.05:2"], out=tmp_path, include_nominal=False)
    assert (tmp_path / "sweep.png").is_file() and paths["png0"].name == "sweep.png"
    rows = list(csv.DictReader((tmp_path / "results.csv").open()))
    assert [r["condition"] for r in rows] == ["profile:peng2018_arm", "latency=0", "latency=0.05"]


@pytest.mark.slow
def test_ray_local(run_dir, tmp_path):
    ray = pytest.importorskip("ray")
    from sim2real.train.evaluate import evaluate_policies

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        evaluate_policies([("p", str(run_dir))], episodes=1, sweeps=["link_mass=0.5:2:2"], out=tmp_path / "ray",
                          ray_address="auto")
        local = evaluate_policies([("p", str(run_dir))], episodes=1, sweeps=["link_mass=0.5:2:2"],
                                  out=tmp_path / "local")
    finally:
        ray.shutdown()
    a = list(csv.DictReader((tmp_path / "ray" / "results.csv").open()))
    b = list(csv.DictReader((tmp_path / "local" / "results.csv").open()))
    assert len(a) == 3 and a == b
    assert local["csv"].is_file()
