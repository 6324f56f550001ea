"""Actuator networks: fitting from logs (``sim2real actuator fit``), the numpy evaluator, the physics-rate
actuator and bad input.

The log comes from a known nonlinear drive simulated here: a PD servo (kp 120 N·m/rad, kd 6 N·m·s/rad)
whose command is clipped by a DC-motor torque–speed limit, followed by a 6 ms first-order torque lag,
driving a joint with inertia, viscous and Coulomb friction. The logged effort is the motor torque.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from sim2real.cli.main import main
from sim2real.robots import load_robot
from sim2real.sim.actuators.net import ActuatorNetActuator, ActuatorNetModel, load, save
from sim2real.sysid.actuator_fit import ActuatorFitConfig, fit_actuator_net
from sim2real.sysid.bagio import write_bag
from sim2real.sysid.csvlog import write_csv
from sim2real.sysid.logs import Commands, HardwareLog, JointStates

PHYSICS_HZ = 500
N = 7
INERTIA = np.linspace(0.6, 0.2, N)  # kg·m²
TAU_LIMIT = np.linspace(30.0, 15.0, N)  # N·m, stall torque
KP, KD, W_FREE, LAG = 120.0, 6.0, 3.0, 0.006
JOINTS = "lbr_iiwa_joint_1,lbr_iiwa_joint_2"


class Drive:
    """The true actuator and joint plant, stepped at ``PHYSICS_HZ`` for the first ``n`` joints."""

    def __init__(self, n: int = N) -> None:
        self.n = n
        self.q, self.qd, self.tau = np.zeros(n), np.zeros(n), np.zeros(n)

    def actuator(self, target: np.ndarray, dt: float) -> np.ndarray:
        lim = TAU_LIMIT[:self.n]
        cmd = KP * (target - self.q) - KD * self.qd
        hi = np.clip(lim * (1 - self.qd / W_FREE), 0, lim)
        lo = np.clip(lim * (-1 - self.qd / W_FREE), -lim, 0)
        self.tau = self.tau + (np.clip(cmd, lo, hi) - self.tau) * dt / LAG
        return self.tau

    def plant(self, tau: np.ndarray, dt: float) -> None:
        qdd = (tau - 0.3 * self.qd - 0.5 * np.tanh(self.qd / 0.05)) / INERTIA[:self.n]
        self.qd = self.qd + qdd * dt
        self.q = self.q + self.qd * dt


def commands(steps: int, n: int, seed: int) -> np.ndarray:
    """``(steps, n)`` position targets held over 20 Hz control periods: steps and 0.05 rad/period ramps."""
    rng = np.random.default_rng(seed)
    out, target, goal, mode, next_goal = np.zeros((steps, n)), np.zeros(n), np.zeros(n), 0, 0
    per_cmd = PHYSICS_HZ // 20
    for k in range(steps):
        if k % per_cmd == 0:
            if k >= next_goal:
                goal, mode = rng.uniform(-1.0, 1.0, n), int(rng.integers(2))
                next_goal = k + int(rng.uniform(0.4, 1.2) * PHYSICS_HZ)
            target = goal if mode == 0 else target + np.clip(goal - target, -0.05, 0.05)
        out[k] = target
    return out


def synthetic_log(robot, duration: float = 30.0, seed: int = 0, efforts: bool = True) -> HardwareLog:
    """Commands at 20 Hz, joint states (q, q̇, motor torque) at 250 Hz of :class:`Drive` stepped at 500 Hz."""
    dt = 1.0 / PHYSICS_HZ
    steps = int(duration * PHYSICS_HZ)
    targets = commands(steps, N, seed)
    drive = Drive()
    rows = np.arange(1, steps, 2)  # physics steps after which a joint state is logged
    t, q, qd, tau = (rows + 1) * dt, np.zeros((rows.size, N)), np.zeros((rows.size, N)), np.zeros((rows.size, N))
    for k in range(steps):
        drive.plant(drive.actuator(targets[k], dt), dt)
        if k % 2 == 1:
            q[k // 2], qd[k // 2], tau[k // 2] = drive.q, drive.qd, drive.tau
    cmd_idx = np.arange(0, steps, PHYSICS_HZ // 20)
    js = JointStates(t, q, qd, tau if efforts else np.full_like(tau, np.nan))
    return HardwareLog("synthetic", robot.joint_names, joint_states=js,
                       command=Commands(cmd_idx * dt, targets[cmd_idx], kind="position"))


@pytest.fixture(scope="module")
def robot():
    return load_robot("kuka_iiwa")


@pytest.fixture(scope="module")
def logs(robot, tmp_path_factory):
    root = tmp_path_factory.mktemp("actuator_logs")
    log = synthetic_log(robot)
    write_csv(root / "log.csv", log, robot)
    no_effort = synthetic_log(robot, duration=2.0, efforts=False)
    write_csv(root / "no_effort.csv", no_effort, robot)
    write_bag(root / "no_effort_bag", no_effort, robot)
    return {"log": log, "csv": root / "log.csv", "no_effort": root / "no_effort.csv",
            "no_effort_bag": root / "no_effort_bag", "root": root}


@pytest.fixture(scope="module")
def fitted(logs, tmp_path_factory):
    """The CLI fit of two joints: (exit code, stdout, net path)."""
    out = tmp_path_factory.mktemp("actuator_fit") / "net.pt"
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = main(["actuator", "fit", str(logs["csv"]), "--robot", "kuka_iiwa", "--out", str(out), "--joints", JOINTS,
                   "--epochs", "30", "--seed", "0", "--quiet"])
    return rc, buf.getvalue(), out


def test_fit_beats_linear_pd_baseline(fitted):
    rc, stdout, out = fitted
    assert rc == 0
    lines = [ln.split() for ln in stdout.splitlines() if ln.startswith("lbr_iiwa_joint_")]
    assert [ln[0] for ln in lines] == JOINTS.split(",")  # one table line per joint
    model = load(out)
    assert model.joints == JOINTS.split(",") and model.history == 3 and model.spacing_s == 0.01
    sidecar = json.loads(out.with_suffix(".json").read_text())
    assert sidecar["robot"] == "kuka_iiwa" and sidecar["validation"] == model.metadata["validation"]
    for name, v in model.metadata["validation"].items():
        # The drive saturates and lags: a linear PD explains little, the net most of the torque.
        assert v["net_rmse"] < 0.35 * v["pd_rmse"], (name, v)
        assert v["net_rmse"] < 0.2 * v["tau_rms"], (name, v)
        assert v["n_val"] > 0.15 * (v["n_train"] + v["n_val"])


def test_fit_from_rosbag_uses_the_same_samples_as_the_log(robot, logs, tmp_path):
    """A rosbag2 with JointState efforts and Float64MultiArray commands gives the fit the in-memory log gives."""
    short = synthetic_log(robot, duration=4.0, seed=1)
    write_bag(tmp_path / "bag", short, robot)
    out = tmp_path / "net.pt"
    assert main(["actuator", "fit", str(tmp_path / "bag"), "--robot", "kuka_iiwa", "--out", str(out),
                 "--joints", "iiwa_joint_3", "--epochs", "2", "--quiet"]) == 0  # ROS joint names map too
    got = load(out).metadata["validation"]["lbr_iiwa_joint_3"]
    ref = fit_actuator_net(short, ActuatorFitConfig(joints=["lbr_iiwa_joint_3"], epochs=2)).joints[0]
    assert got["n_train"] == ref.n_train and got["n_val"] == ref.n_val
    np.testing.assert_allclose([got["pd_kp"], got["pd_kd"]], [ref.kp, ref.kd], rtol=1e-6)
    np.testing.assert_allclose(got["net_rmse"], ref.net_rmse, rtol=1e-4)  # float32 training, ns-rounded stamps


def test_actuator_reproduces_the_drive_in_closed_loop(fitted):
    """The physics-rate actuator driving the plant follows the true drive far closer than the fitted PD."""
    model = load(fitted[2])
    val = model.metadata["validation"]
    gains = np.array([[val[j]["pd_kp"], val[j]["pd_kd"]] for j in model.joints])
    dt, steps = 1.0 / PHYSICS_HZ, 4 * PHYSICS_HZ
    targets = commands(steps, 2, seed=7)

    def rollout(kind: str) -> np.ndarray:
        drive, act = Drive(2), ActuatorNetActuator(model)
        act.reset(drive.q, drive.qd)
        out = np.zeros((steps, 2))
        for k in range(steps):
            if kind == "true":
                tau = drive.actuator(targets[k], dt)
            elif kind == "net":
                tau = act.torque(targets[k], drive.q, drive.qd, dt)
            else:
                tau = gains[:, 0] * (targets[k] - drive.q) - gains[:, 1] * drive.qd
            drive.plant(tau, dt)
            out[k] = drive.q
        return out

    truth = rollout("true")
    err_net = np.sqrt(np.mean((rollout("net") - truth) ** 2, axis=0))
    err_pd = np.sqrt(np.mean((rollout("pd") - truth) ** 2, axis=0))
    assert np.all(err_net < 0.25 * err_pd), (err_net, err_pd)


@pytest.mark.parametrize("per_joint", [False, True])
def test_numpy_evaluator_equals_torch_net(logs, tmp_path, per_joint):
    cfg = ActuatorFitConfig(joints=JOINTS.split(","), history=4, spacing_s=0.006, hidden=(16, 8),
                            per_joint=per_joint, epochs=1, seed=3)
    result = fit_actuator_net(logs["log"], cfg, robot="kuka_iiwa")
    save(tmp_path / "n.pt", result.model)
    model = load(tmp_path / "n.pt")
    assert model.per_joint == per_joint and len(model.weights) == 3
    x = result.samples.x[:, ::7]  # (2, B, 8), raw units
    n_nets = 2 if per_joint else 1
    m = result.model
    with torch.no_grad():
        xs = torch.as_tensor((x.reshape(n_nets, -1, 8) - m.in_mean[:, None]) / m.in_std[:, None])
        ref = (result.net.double()(xs) * torch.as_tensor(m.out_std)[:, None] + torch.as_tensor(m.out_mean)[:, None])
    ref = ref.numpy().reshape(2, -1)
    np.testing.assert_allclose(model.predict(x), ref, atol=1e-5, rtol=0)
    k = 123  # one physics-step call: (n_joints, H) histories, column 0 newest
    np.testing.assert_allclose(model.torque(x[:, k, :4], x[:, k, 4:]), ref[:, k], atol=1e-5, rtol=0)


def _linear_model(history: int, spacing: float) -> ActuatorNetModel:
    """A net without hidden layers: torque ``= Σ_k (k+1)·e_k + 100·(k+1)·v_k`` on two joints."""
    w = np.concatenate([np.arange(1, history + 1), 100.0 * np.arange(1, history + 1)])[None, :, None]
    return ActuatorNetModel(joints=["a", "b"], history=history, spacing_s=spacing, weights=[w.astype(float)],
                            biases=[np.zeros((1, 1, 1))], in_mean=np.zeros((1, 2 * history)),
                            in_std=np.ones((1, 2 * history)), out_mean=np.zeros(1), out_std=np.ones(1))


def test_actuator_samples_history_at_the_spacing():
    """At 240 Hz a 10 ms spacing falls between physics steps: the history is the linear interpolation of
    the stream; before the reset it is the reset state."""
    H, spacing, dt = 3, 0.01, 1.0 / 240.0
    model = _linear_model(H, spacing)
    act = ActuatorNetActuator(model)
    qd0 = np.array([0.5, -0.25])
    act.reset(np.zeros(2), qd0)
    ts = np.arange(40) * dt
    err = np.stack([np.sin(3 * ts), ts ** 2], axis=1)
    vel = np.stack([np.cos(5 * ts), -ts], axis=1)
    coeff_e, coeff_v = np.arange(1, H + 1), 100.0 * np.arange(1, H + 1)
    # Before the reset the stream is the reset state (zero error, qd0), one sample per physics step.
    pre = -dt * np.arange(8, 0, -1)
    for k, t in enumerate(ts):
        tau = act.torque(err[k] + 1.0, np.ones(2), vel[k], dt)
        when = t - spacing * np.arange(H)
        st = np.concatenate([pre, ts[:k + 1]])
        se = np.concatenate([np.zeros((8, 2)), err[:k + 1]])
        sv = np.concatenate([np.tile(qd0, (8, 1)), vel[:k + 1]])
        e_hist = np.stack([np.interp(when, st, se[:, j]) for j in range(2)])
        v_hist = np.stack([np.interp(when, st, sv[:, j]) for j in range(2)])
        np.testing.assert_allclose(tau, e_hist @ coeff_e + v_hist @ coeff_v, atol=1e-9)


def test_load_rejects_other_files(tmp_path):
    from sim2real.errors import CheckpointError

    bad = tmp_path / "bad.pt"
    torch.save({"format": "something-else"}, bad)
    with pytest.raises(CheckpointError, match="not an actuator net"):
        load(bad)
    with pytest.raises(CheckpointError, match="no such"):
        load(tmp_path / "missing.pt")


BAD = {
    "no_efforts": (["{no_effort}"], "no joint efforts"),
    "no_efforts_bag": (["{no_effort_bag}"], "no joint efforts"),
    "unknown_robot": (["{csv}", "--robot", "nobot"], "nobot"),
    "joint_not_in_log": (["{csv}", "--joints", "lbr_iiwa_joint_1,elbow"], "--joints"),
    "history_zero": (["{csv}", "--history", "0"], "--history"),
    "missing_log": (["{tmp}/missing.csv"], "missing.csv"),
    "val_fraction_one": (["{csv}", "--val-fraction", "1"], "--val-fraction"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_exits_2_with_one_line_and_writes_nothing(case, logs, tmp_path, capsys):
    argv, needle = BAD[case]
    argv = [a.format(csv=logs["csv"], no_effort=logs["no_effort"], no_effort_bag=logs["no_effort_bag"], tmp=tmp_path)
            for a in argv]
    if "--robot" not in argv:
        argv += ["--robot", "kuka_iiwa"]
    out = tmp_path / "net.pt"
    out.write_bytes(b"keep")
    rc = main(["actuator", "fit", *argv, "--out", str(out), "--epochs", "1", "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert len(err) == 1 and err[0].startswith("sim2real actuator: error:") and needle in err[0], err
    assert out.read_bytes() == b"keep" and not out.with_suffix(".json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.pt"]
