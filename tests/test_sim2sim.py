"""The MuJoCo arm hardware: URDF compilation, the servo drive against analytic responses, the
hardware file and blind draws, and the ``sim2real sim2sim`` process driven by ``sim2real deploy``
over DDS."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml

mujoco = pytest.importorskip("mujoco")

from sim2real.cli.main import main as cli_main  # noqa: E402
from sim2real.errors import ConfigError  # noqa: E402
from sim2real.robots import load_robot  # noqa: E402
from sim2real.sim2sim.arm import ArmHardware  # noqa: E402
from sim2real.sim2sim.hardware import load_hardware  # noqa: E402
from sim2real.sim2sim.model import build_arm  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
HW_DIR = ROOT / "configs" / "hardware"
KUKA = load_robot("kuka_iiwa")


def kuka_hw(**changes):
    return replace(load_hardware(HW_DIR / "kuka_iiwa.yaml", KUKA), **changes)


def ideal_servo(**changes):
    """No gravity feed-forward, joint friction, damping, delay or noise: the bare PD loop."""
    n = KUKA.n_joints
    base = dict(damping=(0.0,) * n, friction=(0.0,) * n, gravity_ff=False, delay=0.0, setpoint="step",
                noise_position=0.0, noise_velocity=0.0, noise_effort=0.0)
    base.update(changes)
    return kuka_hw(**base)


def no_gravity(arm: ArmHardware) -> ArmHardware:
    arm.model.opt.gravity[:] = 0.0
    return arm


def joint_inertia(arm: ArmHardware, j: int) -> float:
    """Diagonal of MuJoCo's joint-space inertia (armature included) at the current pose, kg·m²."""
    mujoco.mj_forward(arm.model, arm.data)
    full = np.zeros((arm.model.nv, arm.model.nv))
    mujoco.mj_fullM(arm.model, arm.data, full)
    return float(full[j, j])


# ------------------------------------------------------------------------------------ model
@pytest.mark.parametrize("name", ["kuka_iiwa", "franka_panda"])
def test_model_matches_pybullet_reading_of_the_urdf(name: str) -> None:
    import pybullet as p

    robot = load_robot(name)
    arm = build_arm(robot, physics_hz=1000)
    m, d = arm.model, mujoco.MjData(arm.model)
    cid = p.connect(p.DIRECT)
    try:
        body = p.loadURDF(robot.model_path(), useFixedBase=True, flags=p.URDF_USE_INERTIA_FROM_FILE,
                          physicsClientId=cid)
        infos = [p.getJointInfo(body, i, physicsClientId=cid) for i in range(p.getNumJoints(body, physicsClientId=cid))]
        link_index = {info[12].decode(): i for i, info in enumerate(infos)}
        joint_index = {info[1].decode(): i for i, info in enumerate(infos)}
        compared = 0
        for link, i in link_index.items():
            dyn = p.getDynamicsInfo(body, i, physicsClientId=cid)
            b = arm.link_bodies[link]
            assert m.body_mass[b] == pytest.approx(dyn[0], abs=1e-9), link
            if dyn[0] > 0:
                np.testing.assert_allclose(np.sort(m.body_inertia[b]), np.sort(dyn[2]), rtol=1e-6, err_msg=link)
                compared += 1
        assert compared >= 7
        rng = np.random.default_rng(0)
        for _ in range(5):
            q = np.array([rng.uniform(j.lower, j.upper) for j in robot.joints])
            for jn, v in zip(robot.joint_names, q):
                p.resetJointState(body, joint_index[jn], v, physicsClientId=cid)
            d.qpos[arm.qpos] = q
            mujoco.mj_kinematics(m, d)
            for link, i in link_index.items():
                state = p.getLinkState(body, i, computeForwardKinematics=1, physicsClientId=cid)
                b = arm.link_bodies[link]
                np.testing.assert_allclose(d.xipos[b], state[0], atol=1e-6, err_msg=f"{link} COM")
            ee = p.getLinkState(body, link_index[robot.end_effector_link], computeForwardKinematics=1,
                                physicsClientId=cid)
            np.testing.assert_allclose(d.xpos[arm.ee_body], ee[4], atol=1e-6)
    finally:
        p.disconnect(cid)


def test_mass_factor_scales_the_link_and_nothing_else() -> None:
    nominal = build_arm(KUKA, physics_hz=1000)
    heavy = build_arm(KUKA, physics_hz=1000, mass_factors={"lbr_iiwa_link_3": 1.5})
    b = nominal.link_bodies["lbr_iiwa_link_3"]
    ratio = heavy.model.body_mass / np.where(nominal.model.body_mass > 0, nominal.model.body_mass, 1.0)
    assert ratio[b] == pytest.approx(1.5)
    assert np.allclose(np.delete(ratio, b)[np.delete(nominal.model.body_mass, b) > 0], 1.0)
    np.testing.assert_allclose(heavy.model.body_inertia[b], 1.5 * nominal.model.body_inertia[b])


# ------------------------------------------------------------------------------------ servo
def test_pd_step_response_is_the_second_order_system() -> None:
    from scipy import signal

    # joint 7: its inertia is mostly the (diagonal) armature, so the other joints barely couple in
    j, kp, kd, amp = 6, 100.0, 1.2, 0.05
    hw = kuka_hw()
    gains = dict(kp=(*hw.kp[:6], kp), kd=(*hw.kd[:6], kd), effort_limit=(1e4,) * 7)
    arm = no_gravity(ArmHardware(KUKA, ideal_servo(**gains)))
    inertia = joint_inertia(arm, j)
    q0 = arm.setpoint()[0]
    arm.command(q0 + amp * (np.arange(7) == j))
    n = 600
    q = np.empty(n)
    for k in range(n):
        arm.step()
        q[k] = arm.true_state()[0][j] - q0[j]
    t = arm.dt * np.arange(1, n + 1)
    _, expected = signal.step(signal.lti([kp], [inertia, kd, kp]), T=t)
    zeta = kd / (2 * np.sqrt(kp * inertia))
    assert 0.2 < zeta < 0.6  # visibly underdamped: the overshoot is a sharp test
    overshoot = (q.max() - amp) / amp
    assert overshoot == pytest.approx(np.exp(-np.pi * zeta / np.sqrt(1 - zeta**2)), abs=0.02)
    peak_time = np.pi / (np.sqrt(kp / inertia) * np.sqrt(1 - zeta**2))
    assert t[np.argmax(q)] == pytest.approx(peak_time, rel=0.05)
    assert np.sqrt(np.mean((q - amp * expected) ** 2)) < 0.03 * amp


def test_effort_saturates_at_the_limit() -> None:
    limit, j = 1.0, 6
    arm = no_gravity(ArmHardware(KUKA, ideal_servo(effort_limit=(*kuka_hw().effort_limit[:6], limit))))
    inertia = joint_inertia(arm, j)
    q0 = arm.setpoint()[0]
    arm.command(q0 + 0.5 * (np.arange(7) == j))
    arm.step(100)
    assert arm.state().effort[j] == pytest.approx(limit)
    assert arm.max_abs_effort[j] == pytest.approx(limit) and arm.saturated_steps[j] == 100
    moved = arm.true_state()[0][j] - q0[j]
    assert moved == pytest.approx(0.5 * limit / inertia * arm.time**2, rel=0.02)  # constant acceleration


def test_ramp_interpolates_over_the_command_period_and_step_holds() -> None:
    for mode in ("ramp", "step"):
        arm = ArmHardware(KUKA, ideal_servo(setpoint=mode, gravity_ff=True))
        q0 = arm.setpoint()[0]
        arm.step(100)
        target = q0 + 0.1
        arm.command(target)  # first command: period = 1 / robot.yaml control.rate_hz = 50 ms
        arm.step(25)
        q_ref, v_ref = arm.setpoint()
        if mode == "ramp":
            np.testing.assert_allclose(q_ref, q0 + 0.05, atol=1e-9)
            np.testing.assert_allclose(v_ref, 0.1 / 0.05, atol=1e-9)
        else:
            np.testing.assert_allclose(q_ref, target)
            np.testing.assert_allclose(v_ref, 0.0)
        arm.command(target + 0.03)  # 25 ms after the previous one: ramps over 25 ms from where it is
        arm.step(10)
        start = q0 + 0.05 if mode == "ramp" else target
        expected = start + (target + 0.03 - start) * 10 / 25 if mode == "ramp" else target + 0.03
        np.testing.assert_allclose(arm.setpoint()[0], expected, atol=1e-9)
        arm.step(30)
        np.testing.assert_allclose(arm.setpoint()[0], target + 0.03, atol=1e-9)


def test_trajectory_points_are_reached_at_their_time_from_start() -> None:
    arm = ArmHardware(KUKA, ideal_servo(gravity_ff=True))
    q0 = arm.setpoint()[0]
    points = np.array([q0 + 0.1, q0 - 0.05])
    assert arm.trajectory([0.1, 0.3], points)
    arm.step(50)
    np.testing.assert_allclose(arm.setpoint()[0], q0 + 0.05, atol=1e-9)
    arm.step(50)
    np.testing.assert_allclose(arm.setpoint()[0], points[0], atol=1e-9)
    arm.step(200)
    np.testing.assert_allclose(arm.setpoint()[0], points[1], atol=1e-9)
    q = arm.true_state()[0]
    np.testing.assert_allclose(q, points[1], atol=5e-3)  # the servo followed (0.15 rad within 5 mrad)
    # with velocities: cubic Hermite through the points with those slopes
    assert arm.trajectory([0.2], [q0], velocities=[np.zeros(7)])
    arm.step(100)
    np.testing.assert_allclose(arm.setpoint()[0], 0.5 * (points[1] + q0), atol=1e-9)
    assert not arm.trajectory([0.2, 0.1], [q0, q0]) and arm.counts["rejected_trajectory"] == 1


def test_delay_shifts_the_response_by_the_configured_time() -> None:
    runs = []
    for delay in (0.0, 0.03):
        arm = ArmHardware(KUKA, ideal_servo(delay=delay, gravity_ff=True, setpoint="ramp"))
        q0 = arm.setpoint()[0]
        arm.step(100)
        arm.command(q0 + 0.08)
        q = []
        for _ in range(300):
            arm.step()
            q.append(arm.true_state()[0])
        runs.append(np.array(q))
    shift = 30  # 0.03 s at 1000 Hz
    assert np.max(np.abs(runs[1][:shift] - runs[1][0])) < 1e-9  # nothing happens before the delay
    np.testing.assert_allclose(runs[1][shift:], runs[0][:-shift], atol=1e-9)
    assert np.max(np.abs(runs[0][-1] - runs[0][0])) > 0.05


def test_commands_queued_ahead_equal_commands_sent_as_they_arrive() -> None:
    hw = kuka_hw(noise_position=0.0, noise_velocity=0.0, noise_effort=0.0, delay=0.03)
    q0 = np.array(hw.start_pose)
    targets = [q0 + 0.02 * k * np.sin(np.arange(7) + k) for k in range(1, 9)]
    live, queued = ArmHardware(KUKA, hw), ArmHardware(KUKA, hw)
    for k, target in enumerate(targets):
        queued.command(target, t=0.05 * k)
    for k, target in enumerate(targets):
        live.command(target)
        live.step(50)
    queued.step(400)
    np.testing.assert_allclose(queued.true_state()[0], live.true_state()[0], atol=1e-12)


def test_nan_commands_are_rejected_and_estop_holds() -> None:
    arm = ArmHardware(KUKA, kuka_hw())
    q0 = arm.setpoint()[0]
    assert not arm.command(np.full(7, np.nan)) and arm.counts["rejected_nan"] == 1
    assert not arm.command(np.zeros(6)) and arm.counts["rejected_size"] == 1
    arm.command(q0 + 0.3)
    arm.step(60)  # the command is under way
    arm.estop()
    held = arm.true_state()[0]
    assert not arm.command(q0 - 0.3) and arm.counts["ignored_estopped"] == 1
    arm.step(500)
    np.testing.assert_allclose(arm.setpoint()[0], held)
    assert np.max(np.abs(arm.true_state()[0] - held)) < 0.05


def test_a_drive_too_stiff_for_the_physics_rate_is_an_error_not_a_silent_reset() -> None:
    hw = kuka_hw(kp=(*kuka_hw().kp[:6], 1e7), effort_limit=(1e9,) * 7)
    arm = ArmHardware(KUKA, hw)
    arm.command(arm.setpoint()[0] + 0.1)
    with pytest.raises(ConfigError, match="diverged .* too stiff for physics_hz = 1000"):
        arm.step(200)


# ------------------------------------------------------------------------------------ files
def write(path: Path, data) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.mark.parametrize("edit, where", [
    (lambda d: d["drive"].update(kp=-1), "drive.kp: expected a gain > 0"),
    (lambda d: d["drive"].update(kd=[1, 2]), "drive.kd: expected 7 values"),
    (lambda d: d.update(physics_hz=200), "physics_hz: expected a rate >= 500"),
    (lambda d: d["drive"].update(setpoint="cubic"), "drive.setpoint: expected one of ['step', 'ramp']"),
    (lambda d: d["links"].update(mass_factor={"lbr_iiwa_link_0": 2.0}), "links.mass_factor.lbr_iiwa_link_0"),
    (lambda d: d.update(robot="franka_panda"), "robot: this hardware file is for robot 'franka_panda'"),
    (lambda d: d["noise"].update(torque=1.0), "noise.torque: unknown key"),
    (lambda d: d.update(start_pose=[0, 0, 0, 0, 0, 3.0, 0]), "start_pose[5]: 3.0 is outside"),
])
def test_hardware_file_errors_name_file_and_key(tmp_path: Path, capsys, edit, where: str) -> None:
    raw = yaml.safe_load((HW_DIR / "kuka_iiwa.yaml").read_text())
    edit(raw)
    bad = write(tmp_path / "bad.yaml", raw)
    with pytest.raises(ConfigError, match="bad.yaml"):
        load_hardware(bad, KUKA)
    summary = tmp_path / "summary.json"
    code = cli_main(["sim2sim", "--robot", "kuka_iiwa", "--hardware", str(bad), "--transport", "dds",
                     "--duration", "1", "--summary", str(summary)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and where in err and "bad.yaml" in err
    assert not summary.exists()


def test_cli_argument_errors_exit_2(tmp_path: Path, capsys) -> None:
    draw = str(HW_DIR / "arm_draw.yaml")
    for argv, msg in [
        (["--draw", draw], "--draw needs --seed"),
        (["--truth", str(tmp_path / "t.json")], "--truth records a drawn hardware"),
        (["--duration", "0"], "--duration: expected seconds > 0"),
        (["--draw", draw, "--seed", "1", "--truth", str(tmp_path / "no" / "t.json")], "does not exist"),
        (["--hardware", str(tmp_path / "missing.yaml")], "hardware file not found"),
    ]:
        assert cli_main(["sim2sim", "--robot", "kuka_iiwa", *argv]) == 2
        assert msg in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_missing_mujoco_is_one_clear_line(tmp_path: Path, capsys, monkeypatch) -> None:
    import sim2real.sim2sim.model as model

    monkeypatch.setattr(model, "mujoco", None)  # what the module holds when `import mujoco` failed
    assert cli_main(["sim2sim", "--robot", "kuka_iiwa", "--summary", str(tmp_path / "s.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "needs the 'mujoco' package: pip install 'sim2real[sim2sim]'" in err
    assert not any(tmp_path.iterdir())


def test_draw_is_reproducible_within_its_ranges() -> None:
    from sim2real.sim2sim.hardware import draw_hardware

    base = load_hardware(HW_DIR / "kuka_iiwa.yaml", KUKA)
    draws = [draw_hardware(HW_DIR / "arm_draw.yaml", KUKA, np.random.default_rng(s)) for s in (5, 5, 6)]
    assert draws[0].to_dict() == draws[1].to_dict() and draws[0].to_dict() != draws[2].to_dict()
    d = draws[0]
    assert 0.02 <= d.delay <= 0.08 and d.setpoint in ("ramp", "step")
    assert all(0.6 <= f <= 1.6 for f in d.mass_factors.values()) and len(set(d.mass_factors.values())) == 7
    assert all(0.6 <= a / b <= 1.4 for a, b in zip(d.kp, base.kp))
    assert d.effort_limit == base.effort_limit and d.source == "drawn from arm_draw.yaml"



def test_shared_factor_is_one_draw_for_every_joint(tmp_path: Path) -> None:
    from sim2real.sim2sim.hardware import draw_hardware

    base = load_hardware(HW_DIR / "kuka_iiwa.yaml", KUKA)
    d = draw_hardware(HW_DIR / "arm_draw_calibration.yaml", KUKA, np.random.default_rng(3))
    kp_ratio = np.array(d.kp) / np.array(base.kp)
    assert np.allclose(kp_ratio, kp_ratio[0]) and 0.7 <= kp_ratio[0] <= 1.3
    assert len({round(a / b, 12) for a, b in zip(d.damping, base.damping)}) == 7  # not shared: one draw per joint
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"base: {{kuka_iiwa: {HW_DIR / 'kuka_iiwa.yaml'}}}\n"
                   "draw: {delay: {distribution: uniform, low: 0.0, high: 0.1, shared: true}}\n")
    with pytest.raises(ConfigError, match=r"draw\.delay\.shared: only per-link/per-joint factors"):
        draw_hardware(bad, KUKA, np.random.default_rng(0))

# ------------------------------------------------------------------------------------ processes
def domain_id() -> int:
    return random.Random(os.getpid() * 1_000_003 + time.time_ns()).randint(100, 200)


def sim2real_proc(*argv: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen([sys.executable, "-m", "sim2real", *argv], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_topics_in_and_out_over_dds() -> None:
    """The process loop in-process: JointState out by name; commands, a trajectory with its joints in
    another order, NaN, e-stop in."""
    pytest.importorskip("cyclonedds")
    import threading

    from sim2real.ros2.transport_dds import DdsTransport
    from sim2real.sim2sim.arm_node import run_arm
    from sim2real.sim2sim.registry import RunOptions

    domain = domain_id()
    names = list(KUKA.ros2.joint_names)
    home = np.array([j.home for j in KUKA.joints])
    robot_side, operator = DdsTransport("sim2sim", domain_id=domain), DdsTransport("operator", domain_id=domain)
    states: list = []
    operator.subscribe("/joint_states", "sensor_msgs/msg/JointState",
                       lambda m: states.append((list(m.name), np.array(m.position), np.array(m.effort))), sensor=True)
    topics = ("/forward_position_controller/commands", "/joint_trajectory_controller/joint_trajectory", "/estop")
    cmd = operator.advertise(topics[0], "std_msgs/msg/Float64MultiArray")
    traj = operator.advertise(topics[1], "trajectory_msgs/msg/JointTrajectory")
    estop = operator.advertise(topics[2], "std_msgs/msg/Bool")
    summary: dict = {}
    loop = threading.Thread(target=lambda: summary.update(
        run_arm(KUKA, kuka_hw(delay=0.0), robot_side, RunOptions(duration=5.0, realtime_factor=2.0))))
    loop.start()
    try:
        deadline = time.monotonic() + 20
        while (not states or not all(operator.subscriber_count(t) for t in topics)) and time.monotonic() < deadline:
            time.sleep(0.02)
        cmd({"data": [float("nan")] * 7})
        cmd({"data": (home + 0.1).tolist()})
        time.sleep(0.5)
        target = home - 0.1
        traj({"joint_names": names[::-1],
              "points": [{"positions": target[::-1].tolist(), "time_from_start": {"sec": 0, "nanosec": 300_000_000}}]})
        time.sleep(0.7)
        name, position, effort = states[-1]
        assert name == names and effort.shape == (7,)
        np.testing.assert_allclose(position, target, atol=0.01)
        estop({"data": True})
        time.sleep(0.2)
        cmd({"data": (home + 0.2).tolist()})
        loop.join(timeout=30)
    finally:
        operator.close()
    assert not loop.is_alive()
    robot_side.close()
    assert summary["commands_received"] == {topics[0]: 3, topics[1]: 1, topics[2]: 1}
    assert summary["commands_accepted"] == {"forward_command": 1, "joint_trajectory": 1}
    safety = summary["safety"]
    assert safety["rejected_nan"] == 1 and safety["estop"] and safety["ignored_while_estopped"] == 1
    np.testing.assert_allclose(list(summary["final_joint_positions"].values()), target, atol=0.01)
    assert summary["sim_time_s"] == pytest.approx(5.0) and summary["joint_states_published"] == 1000


def test_drawn_hardware_is_secret_and_reproducible(tmp_path: Path, capsys) -> None:
    pytest.importorskip("cyclonedds")

    def argv(name: str) -> list[str]:
        return ["sim2sim", "--robot", "kuka_iiwa", "--draw", str(HW_DIR / "arm_draw.yaml"), "--seed", "11",
                "--truth", str(tmp_path / f"truth_{name}.json"), "--transport", "dds", "--domain-id",
                str(domain_id()), "--duration", "0.3", "--realtime-factor", "10",
                "--summary", str(tmp_path / f"summary_{name}.json")]

    proc = sim2real_proc(*argv("a"))  # a process: everything it prints
    assert cli_main(argv("b")) == 0  # and in-process, the same draw
    captured = capsys.readouterr()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    outs = [out + err, captured.out + captured.err]
    for name, text in zip("ab", outs):
        assert json.loads(text[:text.rindex("}") + 1]) == json.loads((tmp_path / f"summary_{name}.json").read_text())
    truth = json.loads((tmp_path / "truth_a.json").read_text())
    assert truth == json.loads((tmp_path / "truth_b.json").read_text())
    assert load_hardware(tmp_path / "truth_a.json", KUKA).to_dict() == truth  # the truth is a hardware file
    secrets = [*truth["links"]["mass_factor"].values(), *truth["joints"]["damping"], *truth["drive"]["kp"],
               *truth["drive"]["kd"], truth["drive"]["delay"], truth["noise"]["effort"]]
    for text in outs:
        summary = json.loads(text[:text.rindex("}") + 1])
        assert summary["sim_time_s"] == pytest.approx(0.3) and summary["hardware"] == "drawn from arm_draw.yaml"
        for value in secrets:
            assert repr(value) not in text and f"{value:.6g}" not in text


def test_deploy_drives_the_mujoco_arm_over_dds(tmp_path: Path) -> None:
    """`sim2real deploy` with an exported policy, `sim2real sim2sim` as the robot: the arm follows."""
    pytest.importorskip("cyclonedds")
    torch = pytest.importorskip("torch")
    from test_ros2_support import sidecar_dict

    home = np.array([j.home for j in KUKA.joints])
    q_goal = home + np.array([0.3, 0.25, 0.2, 0.3, 0.2, -0.2, 0.1])

    class ToPose(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("goal", torch.tensor(q_goal, dtype=torch.float32))

        def forward(self, obs: torch.Tensor) -> torch.Tensor:
            return torch.clamp((self.goal - obs[:, :7]) * 5.0, -1.0, 1.0)

    torch.jit.script(ToPose()).save(str(tmp_path / "policy.pt"))
    (tmp_path / "policy.yaml").write_text(yaml.safe_dump(
        sidecar_dict(layout=[["joint_position", 7], ["joint_velocity", 7]], rate=20.0), sort_keys=False))
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(
        {"sim2real_deploy": {"ros__parameters": {"safety": {"soft_start_s": 0.2}}}}))
    arm = build_arm(KUKA, physics_hz=1000)
    d = mujoco.MjData(arm.model)
    d.qpos[arm.qpos] = q_goal
    mujoco.mj_kinematics(arm.model, d)
    goal = d.xpos[arm.ee_body].copy()

    domain = str(domain_id())
    # the robot runs until stopped (SIGTERM, as a launch system stops it) once deploy has finished
    robot = sim2real_proc("sim2sim", "--robot", "kuka_iiwa", "--transport", "dds", "--domain-id", domain,
                          "--duration", "100", "--summary", str(tmp_path / "summary.json"))
    deploy = sim2real_proc("deploy", "--robot", "kuka_iiwa", "--policy", str(tmp_path / "policy.pt"), "--transport",
                           "dds", "--domain-id", domain, "--duration", "3", "--params", str(tmp_path / "params.yaml"),
                           "--goal", *map(str, goal))
    try:
        deploy_out, deploy_err = deploy.communicate(timeout=120)
        robot.send_signal(signal.SIGTERM)
        _, robot_err = robot.communicate(timeout=60)
    finally:
        for proc in (robot, deploy):
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert robot.returncode == 0, robot_err
    assert deploy.returncode == 0, deploy_err
    summary = json.loads((tmp_path / "summary.json").read_text())
    received = summary["commands_received"]["/forward_position_controller/commands"]
    assert summary["interrupted"] and summary["joint_states_published"] > 0
    assert received > 0.7 * 20 * 3 and summary["commands_accepted"]["forward_command"] == received
    start = np.linalg.norm(np.array(summary["end_effector"]["start"]) - goal)
    end = np.linalg.norm(np.array(summary["end_effector"]["end"]) - goal)
    assert start > 0.15 and end < 0.2 * start, (summary, deploy_out)
    assert summary["safety"]["rejected_nan"] == 0 and not summary["safety"]["estop"]
