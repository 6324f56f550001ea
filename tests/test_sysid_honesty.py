"""Calibration under model error: estimates on a search bound, the delay search range, the log's
noise floor and the misfit verdict, held-out validation (``sim2real calibrate --validate``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sim2real.profiles import load_profile
from sim2real.robots import load_robot
from sim2real.sysid import calibrate as calmod
from sim2real.sysid.calibrate import CalibrationConfig, calibrate
from sim2real.sysid.misfit import assess_fit, bound_check, noise_floor, suggest_bounds
from sim2real.sysid.params import parse_params
from sim2real.sysid.record import record_excitation
from sim2real.sysid.report import narrowed_profile

ROBOT = load_robot("kuka_iiwa")
FAST = dict(horizon=10, max_windows=8, budget=70, lm_iterations=4, cma_fraction=0.75)
NOISE = dict(pos_noise=5e-4, vel_noise=5e-3, effort_noise=0.5)


def _masses(scale: float) -> dict:
    return {"params": {"link_mass": {"distribution": "constant", "value": scale, "shared": True}}}


def test_noise_floor_recovers_injected_white_noise() -> None:
    rng = np.random.default_rng(0)
    t = np.arange(2000) / 20.0  # 20 Hz, 100 s
    freqs = np.geomspace(0.1, 1.5, 8)
    smooth = sum(np.sin(2 * np.pi * f * t + p) / np.sqrt(f) for f, p in zip(freqs, rng.uniform(0, 6, 8)))
    sigma = np.array([1e-3, 1e-2, 0.3])
    x = 0.4 * smooth[:, None] * np.array([1.0, 3.0, 50.0]) + rng.normal(size=(t.size, 3)) * sigma
    np.testing.assert_allclose(noise_floor(x), sigma, rtol=0.1)
    assert noise_floor(0.4 * smooth[:, None]).item() < 1e-4  # a smooth signal alone: (almost) no noise
    x[:, 1] = np.nan  # a signal the log does not have
    est = noise_floor(x)
    assert np.isnan(est[1]) and np.isfinite(est[[0, 2]]).all()
    assert np.isnan(noise_floor(x[:5])).all()  # too short for the local fit


def test_noise_floor_of_a_recorded_log() -> None:
    log, _ = record_excitation(ROBOT, load_profile("nominal", robot=ROBOT), 0, "multisine", 30.0, **NOISE)
    js = log.joint_states
    for x, sigma in ((js.position, NOISE["pos_noise"]), (js.velocity, NOISE["vel_noise"]),
                     (js.effort, NOISE["effort_noise"])):
        ratio = noise_floor(x) / sigma
        assert np.all(np.abs(ratio - 1) < 0.25), ratio
        assert abs(np.median(ratio) - 1) < 0.1, ratio


def test_assess_fit_verdicts() -> None:
    rng = np.random.default_rng(1)
    noise = {"position": np.array([1e-3, 2e-3])}
    at_noise = {"position": rng.normal(size=(50, 10, 2)) * noise["position"]}
    fit = assess_fit(at_noise, noise, 1)
    assert fit.verdict == "consistent" and fit.chi2_dof == pytest.approx(1.0, abs=0.1) and fit.inflation < 1.1
    off = {"position": at_noise["position"] * 3.0}
    fit = assess_fit(off, noise, 1)
    assert fit.verdict == "misfit" and fit.chi2_dof == pytest.approx(9.0, rel=0.1)
    assert fit.inflation == pytest.approx(np.sqrt(fit.chi2_dof)) and "misfit" in fit.message
    # a noise-free signal: the floor is a resolution limit of the signal's spread, not zero
    fit = assess_fit(at_noise, {"position": np.zeros(2)}, 1, scales={"position": np.array([1.0, 2.0])})
    assert fit.noise_floor["position"] == [1e-3, 2e-3] and np.isfinite(fit.chi2_dof)


def test_bound_checks_and_suggestions() -> None:
    assert bound_check(0.999) == "high" and bound_check(0.01) == "low" and bound_check(0.5) is None
    assert bound_check(0.0) == "low"  # zero friction too: the fit may have wanted less
    assert bound_check(23 / 24, integer_steps=24) == "high" and bound_check(22 / 24, integer_steps=24) is None
    assert suggest_bounds("mass", 0.25, 4.0, "high", log=True, integer=False, nonnegative=False)[2] == "mass=0.25:16"
    assert suggest_bounds("mass", 0.25, 4.0, "low", log=True, integer=False, nonnegative=False)[2] == "mass=0.0625:4"
    assert suggest_bounds("friction", 0.5, 5.0, "low", log=False, integer=False, nonnegative=True)[2] == "friction=0:5"
    assert suggest_bounds("delay", 0, 24, "high", log=False, integer=True, nonnegative=True)[2] == "delay=0:36"


def test_delay_on_its_search_bound_is_not_identified() -> None:
    (spec,) = parse_params("delay", ROBOT, bounds={"delay": (0, 24)})
    est = calmod._delay_estimate(spec, 24, {22: 1.3, 23: 1.2, 24: 1.0}, 1.0)
    assert (est.ci_low, est.ci_high) == (24, 24)  # a zero-width interval, yet ...
    assert not est.identifiable and est.bound == "high" and est.suggested_bounds == "delay=0:36"
    assert calmod._delay_estimate(spec, 23, {22: 1.3, 23: 1.0, 24: 1.2}, 1.0).bound == "high"  # one step off
    zero = calmod._delay_estimate(spec, 0, {0: 1.0, 1: 1.5}, 1.0)
    assert not zero.identifiable and zero.bound == "low" and zero.suggested_bounds is None  # 0: a physical limit
    mid = calmod._delay_estimate(spec, 12, {11: 2.0, 12: 1.0, 13: 2.0}, 1.0)
    assert mid.identifiable and (mid.ci_low, mid.ci_high) == (12, 12)
    wide = calmod._delay_estimate(spec, 12, {11: 2.0, 12: 1.0, 13: 2.0}, 1.0, inflation=3.0)
    assert (wide.ci_low, wide.ci_high) == (9, 15) and wide.identifiable  # misfit: at least ±inflation steps
    assert not calmod._delay_estimate(spec, 12, {12: 1.0}, 1.0, inflation=5.0).identifiable


def test_delay_bounds_are_searched_in_full() -> None:
    (default,) = parse_params("delay", ROBOT)
    assert default.high == np.ceil(0.2 * ROBOT.control.physics_hz) == 48  # 200 ms
    (spec,) = parse_params("delay", ROBOT, bounds={"delay": (0, 60)})
    log, _ = record_excitation(ROBOT, load_profile("nominal", robot=ROBOT), 0, "chirp", 5.0, pos_noise=1e-3)
    res = calibrate(log, ROBOT, [spec], CalibrationConfig(horizon=5, max_windows=3, budget=80), progress=False)
    assert set(res.delay_scan) == set(range(0, 61))  # beyond 3 control steps (36): nothing capped
    (d,) = res.params
    assert d.high == 60 and res.fit["verdict"] in ("consistent", "misfit")


def test_fit_forced_onto_a_bound_is_not_identified(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sim2real.cli.main import main

    prof = tmp_path / "hidden.yaml"
    prof.write_text("params:\n  link_mass: {distribution: constant, value: 1.3, shared: true}\n")
    bag = tmp_path / "run"
    assert main(["record", "--robot", "kuka_iiwa", "--profile", str(prof), "--seed", "2", "--excitation", "multisine",
                 "--duration", "8", "--out", str(bag), "--storage", "sqlite3", "--pos-noise", "0.0005",
                 "--vel-noise", "0.005", "--effort-noise", "0.5"]) == 0
    out = tmp_path / "cal.yaml"
    capsys.readouterr()
    assert main(["calibrate", "--log", str(bag), "--robot", "kuka_iiwa", "--params", "mass", "--out", str(out),
                 "--bounds", "mass=0.5:1.0", "--budget", "40", "--horizon", "10", "--max-windows", "6",
                 "--no-plot", "--quiet"]) == 0
    printed = capsys.readouterr().out
    (p,) = json.loads(out.with_suffix(".json").read_text())["params"]
    assert p["estimate"] == pytest.approx(1.0, rel=0.02)  # the truth (1.3) is outside the search range
    assert not p["identifiable"] and p["bound"] == "high" and p["suggested_bounds"] == "mass=0.5:1.414"
    assert "re-run with: --bounds mass=0.5:1.414" in printed
    import yaml

    entry = yaml.safe_load(out.read_text())["params"]["link_mass"]
    assert (entry["low"], entry["high"]) == (0.5, 1.0)  # the profile keeps the search range


def _wrong_model_log():
    return record_excitation(ROBOT, load_profile(_masses(1.5), robot=ROBOT), 3, "multisine", 8.0, **NOISE)[0]


def test_wrong_model_is_a_misfit_and_intervals_widen(monkeypatch: pytest.MonkeyPatch) -> None:
    log = _wrong_model_log()
    specs = parse_params("damping", ROBOT)  # masses are 1.5x nominal but not fitted
    res = calibrate(log, ROBOT, specs, CalibrationConfig(**FAST), progress=False)
    fit = res.fit
    assert fit["verdict"] == "misfit" and fit["chi2_dof"] > 10
    assert fit["inflation"] == pytest.approx(np.sqrt(fit["chi2_dof"]))
    # the same fit without the inflation (deterministic: same seed, same evaluations)
    real = calmod.assess_fit

    def uninflated(*a, **k):
        q = real(*a, **k)
        q.inflation = 1.0
        return q

    monkeypatch.setattr(calmod, "assess_fit", uninflated)
    base = calibrate(log, ROBOT, specs, CalibrationConfig(**FAST), progress=False)
    (p,), (b,) = res.params, base.params
    assert p.estimate == pytest.approx(b.estimate)
    assert p.std == pytest.approx(fit["inflation"] * b.std, rel=1e-6)
    assert p.ci_low <= b.ci_low and p.ci_high >= b.ci_high
    wide, narrow = (narrowed_profile(r, ROBOT)["params"]["joint_damping"] for r in (res, base))
    assert wide["high"] - wide["low"] >= narrow["high"] - narrow["low"]
    assert "model misfit" in narrowed_profile(res, ROBOT)["description"]


def test_right_model_is_consistent() -> None:
    log, _ = record_excitation(ROBOT, load_profile(_masses(1.3), robot=ROBOT), 3, "multisine", 8.0, **NOISE)
    res = calibrate(log, ROBOT, parse_params("mass", ROBOT), CalibrationConfig(**FAST), progress=False)
    assert res.fit["verdict"] == "consistent" and res.fit["chi2_dof"] < 2.0 and res.fit["inflation"] < 1.42
    (p,) = res.params
    assert p.identifiable and p.ci_low <= 1.3 <= p.ci_high
    for sig in ("position", "velocity", "effort"):
        assert res.fit["chi2_dof_per_signal"][sig] == pytest.approx(1.0, abs=0.5)
    assert np.median(res.fit["noise_floor"]["position"]) == pytest.approx(NOISE["pos_noise"], rel=0.25)


def test_validate_on_a_held_out_log(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sim2real.cli.main import main

    prof = tmp_path / "hidden.yaml"
    prof.write_text("params:\n  link_mass: {distribution: constant, value: 1.4, shared: true}\n")
    bags = {}
    for name, seed, kind in (("fit", 2, "multisine"), ("heldout", 7, "chirp")):
        bags[name] = tmp_path / name
        assert main(["record", "--robot", "kuka_iiwa", "--profile", str(prof), "--seed", str(seed), "--excitation",
                     kind, "--duration", "6", "--out", str(bags[name]), "--storage", "sqlite3", "--pos-noise", "0.0005",
                     "--effort-noise", "0.5"]) == 0
    out = tmp_path / "cal.yaml"
    assert main(["calibrate", "--log", str(bags["fit"]), "--robot", "kuka_iiwa", "--params", "mass", "--out", str(out),
                 "--budget", "40", "--horizon", "10", "--max-windows", "6", "--no-plot", "--quiet"]) == 0
    cal = out.with_suffix(".json")
    capsys.readouterr()
    assert main(["calibrate", "--validate", str(bags["heldout"]), "--calibrated", str(cal), "--max-windows", "8"]) == 0
    printed = capsys.readouterr().out
    val = tmp_path / "cal.validation.json"
    data = json.loads(val.read_text())
    assert data["parameters"]["mass"] == pytest.approx(1.4, rel=0.05)
    for sig in ("position", "velocity", "effort"):
        s = data["signals"][sig]
        assert s["rms_calibrated_all"] < s["rms_nominal_all"] and len(s["rms_nominal"]) == 7
    assert data["signals"]["effort"]["ratio"] < 0.5 and data["cost_calibrated"] < data["cost_nominal"]
    assert "rms_nominal" in printed and "effort" in printed
    assert data["fit_calibrated"]["chi2_dof"] < data["fit_nominal"]["chi2_dof"]
    rows = val.with_suffix(".csv").read_text().splitlines()
    assert rows[0] == "signal,joint,unit,rms_nominal,rms_calibrated" and len(rows) == 1 + 3 * 8
    assert val.with_suffix(".png").stat().st_size > 10_000
    # bad input: one line, exit 2, nothing written
    bad_out = tmp_path / "bad.json"
    other = tmp_path / "other.json"
    other.write_text(cal.read_text().replace('"robot": "kuka_iiwa"', '"robot": "franka_panda"'))
    (tmp_path / "junk.json").write_text("{not json")
    for argv in (["--validate", str(tmp_path / "missing"), "--calibrated", str(cal)],
                 ["--validate", str(bags["heldout"]), "--calibrated", str(tmp_path / "none.json")],
                 ["--validate", str(bags["heldout"])],
                 ["--calibrated", str(cal)],
                 ["--validate", str(bags["heldout"]), "--calibrated", str(tmp_path / "junk.json"), "--robot", "kuka_iiwa"],
                 ["--validate", str(bags["heldout"]), "--calibrated", str(other), "--robot", "kuka_iiwa"]):
        capsys.readouterr()
        assert main(["calibrate", *argv, "--out", str(bad_out)]) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "Traceback" not in err[0], err
        assert not bad_out.exists() and not bad_out.with_suffix(".png").exists()
    assert main(["calibrate", "--log", str(bags["fit"]), "--robot", "kuka_iiwa", "--out", str(out)]) == 2


def test_overlay_shows_positions_velocities_and_efforts() -> None:
    from sim2real.sysid.replay import WindowSet
    from sim2real.sysid.report import joint_signals_figure

    w, h, n = 4, 5, 2
    z = np.zeros((w, h, n))
    ws = WindowSet(q0=np.zeros((w, n)), qd0=np.zeros((w, n)), past=np.zeros((w, 3, n)), cmd=z, q=z, qd=z,
                   t=np.tile(np.arange(h + 1) * 0.05, (w, 1)), tau=z)
    fig = joint_signals_figure(ws, (z, z, z), (z, z, z), ["a", "b"])
    assert [ax.get_title() for ax in fig.axes[:3]] == ["position", "velocity", "effort"] and len(fig.axes) == 3 * n
    ws.tau = None  # a log without efforts: two columns
    assert len(joint_signals_figure(ws, (z, z, z), (z, z, z), ["a", "b"]).axes) == 2 * n


def test_a_parameter_the_fit_does_not_depend_on_gets_its_whole_range() -> None:
    specs = parse_params("mass,damping", ROBOT)

    def evaluate(xs, fixed, mode="cost", per_item=False):
        out = [np.array([4.0 * (x[0] - 0.5), 0.01, -0.01, 0.02]) for x in xs]  # damping (x[1]) has no effect
        return out if mode == "residuals" else [float(np.mean(r * r)) for r in out]

    mass, damping = calmod._uncertainty(evaluate, np.array([0.5, 0.3]), specs, [], calmod._Budget(50, None))
    assert mass.identifiable and mass.ci_low < 1.0 < mass.ci_high
    assert not damping.identifiable and (damping.ci_low, damping.ci_high) == pytest.approx((0.1, 10.0))
