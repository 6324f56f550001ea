"""MuJoCo quadrotor hardware: rotor physics, the onboard firmware, the hardware file, and a flight over DDS."""

from __future__ import annotations

import dataclasses
import json
import math
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace as Msg
from typing import Any

import numpy as np
import pytest

pytest.importorskip("mujoco")

from sim2real.errors import ConfigError  # noqa: E402
from sim2real.robots import load_robot  # noqa: E402
from sim2real.sim2sim.quadrotor import QuadrotorSim, draw_hardware, load_hardware  # noqa: E402
from sim2real.sim2sim.quadrotor_hardware import hardware_from_mapping  # noqa: E402
from sim2real.sim2sim.quadrotor_model import GRAVITY, QuadrotorDynamics, nominal_airframe  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ROBOT = load_robot("quadrotor")
NOMINAL = nominal_airframe(ROBOT)
DRAW = ROOT / "configs" / "hardware" / "quadrotor_draw.yaml"


def v3(x: float, y: float, z: float) -> Msg:
    return Msg(x=x, y=y, z=z)


def handler(sim: QuadrotorSim, type_name: str) -> tuple[str, Any]:
    return next((topic, h) for topic, t, h in sim.commander.subscriptions if t == type_name)


def fly(sim: QuadrotorSim, seconds: float, send: Any = None, every: float = 0.02) -> list[np.ndarray]:
    """Step ``seconds``; ``send()`` is called every ``every`` s; returns the true states' [pos, vel, rates]."""
    out, next_send = [], sim.time
    while sim.time < seconds - 1e-9:
        if send is not None and sim.time >= next_send - 1e-9:
            send()
            next_send += every
        sim.step()
        s = sim.dyn.state()
        out.append(np.concatenate([s.position, s.velocity, s.body_rates]))
    return out


# --- airframe physics ------------------------------------------------------------------------

def test_hover_thrust_is_weight_at_the_analytic_hover_speed() -> None:
    frame = dataclasses.replace(NOMINAL, payload_mass=0.004, payload_offset=np.zeros(3))
    dyn = QuadrotorDynamics(frame, 1000.0)
    dyn.reset(np.array([0.0, 0.0, 1.0]))
    omega = math.sqrt(frame.total_mass * GRAVITY / (4 * frame.kf))
    assert frame.hover_rpm == pytest.approx(omega)
    assert float(np.sum(dyn.model.body_mass)) == pytest.approx(frame.total_mass)
    dyn.command(np.full(4, omega))
    for _ in range(500):
        dyn.step()
    s = dyn.state()
    np.testing.assert_allclose(dyn.rotor_wrench(), [frame.total_mass * GRAVITY, 0, 0, 0], atol=1e-9)
    np.testing.assert_allclose(s.position, [0, 0, 1], atol=1e-9)
    np.testing.assert_allclose(s.specific_force, [0, 0, GRAVITY], atol=1e-6)  # the accelerometer reads +g
    dyn.command(np.full(4, 1.1 * omega))  # 21 % more thrust: accelerates up at 0.21 g
    for _ in range(300):
        dyn.step()
    assert dyn.state().specific_force[2] == pytest.approx(1.21 * GRAVITY, rel=1e-3)


def test_motor_lag_reaches_63_percent_at_the_time_constant() -> None:
    tau, hz = 0.04, 1000.0
    dyn = QuadrotorDynamics(dataclasses.replace(NOMINAL, motor_tau=tau), hz)
    dyn.reset(np.array([0.0, 0.0, 1.0]), rotor_rpm=0.0)
    target = 0.8 * NOMINAL.max_rpm
    dyn.command(np.full(4, target))
    for _ in range(int(round(tau * hz))):
        dyn.step()
    np.testing.assert_allclose(dyn.rpm / target, 1 - math.exp(-1), atol=1e-9)
    # the thrust MuJoCo applied follows the lagged speed: specific force = 4 kf w^2 / m
    assert dyn.state().specific_force[2] == pytest.approx(4 * NOMINAL.kf * dyn.rpm[0] ** 2 / NOMINAL.mass, rel=1e-6)
    dyn.command(np.full(4, 2 * NOMINAL.max_rpm))
    for _ in range(500):
        dyn.step()
    np.testing.assert_allclose(dyn.rpm_cmd, NOMINAL.max_rpm)  # omega limit
    assert np.all(dyn.rpm <= NOMINAL.max_rpm) and np.allclose(dyn.rpm, NOMINAL.max_rpm, rtol=1e-5)


def test_counter_clockwise_rotors_yaw_the_body_clockwise() -> None:
    dyn = QuadrotorDynamics(NOMINAL, 1000.0)
    dyn.reset(np.array([0.0, 0.0, 1.0]), rotor_rpm=NOMINAL.hover_rpm)
    w = NOMINAL.hover_rpm
    fast, slow = w * 1.05, math.sqrt(2 * w**2 - (w * 1.05) ** 2)  # same total thrust
    dyn.command(np.array([fast, slow, fast, slow]))  # rotors 0, 2 spin counter-clockwise
    dyn.rpm[:] = dyn.rpm_cmd
    dyn.step()
    yaw_acc = float(dyn.data.qacc[5])
    expected = -2 * NOMINAL.km * (fast**2 - slow**2) / NOMINAL.inertia[2]
    assert yaw_acc == pytest.approx(expected, rel=1e-6) and yaw_acc < 0
    for _ in range(200):
        dyn.step()
    assert dyn.state().body_rates[2] < 0 and abs(dyn.state().body_rates[0]) < 1e-9


# --- firmware ---------------------------------------------------------------------------------

def perturbed() -> Any:
    return hardware_from_mapping({"body": {"mass_factor": 1.1, "payload_mass": 0.003, "payload_offset": [0.01, 0, 0]},
                                  "rotors": {"kf_factor": 0.92, "motor_tau": 0.035},
                                  "aero": {"drag": [0.01, 0.01, 0.01], "wind_force": [0.005, -0.005, 0.0]}}, ROBOT)


def test_crazyflie_firmware_holds_a_world_velocity_setpoint() -> None:
    sim = QuadrotorSim(ROBOT, perturbed())
    topic, h = handler(sim, "crazyflie_interfaces/msg/VelocityWorld")
    trace = np.array(fly(sim, 4.0, lambda: sim.deliver(topic, h, Msg(vel=v3(0.4, -0.3, 0.2), yaw_rate=-20.0))))
    settled = trace[-500:]  # the last second
    np.testing.assert_allclose(settled[:, 3:6].mean(axis=0), [0.4, -0.3, 0.2], atol=0.03)
    # yaw_rate is deg/s clockwise-positive (the Crazyflie commander negates it): -20 -> +0.349 rad/s ENU
    assert settled[:, 8].mean() == pytest.approx(math.radians(20), abs=0.03)
    assert sim.summary()["commands"][topic]["count"] == 200


def test_px4_offboard_velocity_in_ned_after_the_heartbeat_and_hold_on_loss() -> None:
    hw = hardware_from_mapping({"firmware": "px4"}, ROBOT)
    sim = QuadrotorSim(ROBOT, hw)
    mode_topic, on_mode = handler(sim, "px4_msgs/msg/OffboardControlMode")
    sp_topic, on_sp = handler(sim, "px4_msgs/msg/TrajectorySetpoint")
    nan3 = [math.nan] * 3

    def send() -> None:
        if sim.time < 3.0:
            sim.deliver(mode_topic, on_mode, Msg(position=False, velocity=True))
            sim.deliver(sp_topic, on_sp, Msg(position=nan3, velocity=[0.3, 0.5, -0.2], acceleration=nan3,
                                             yaw=math.nan, yawspeed=math.nan))
    trace = np.array(fly(sim, 5.0, send))
    events = [e["event"] for e in sim.summary()["safety_events"]]
    assert events[:2] == ["offboard_engaged", "offboard_lost"]
    t = np.arange(1, len(trace) + 1) * sim.dyn.dt
    flying = trace[(t > 2.0) & (t < 3.0)]
    np.testing.assert_allclose(flying[:, 3:6].mean(axis=0), [0.5, 0.3, 0.2], atol=0.03)  # NED (0.3, 0.5, -0.2)
    lost = next(e for e in sim.summary()["safety_events"] if e["event"] == "offboard_lost")["t"]
    assert 3.9 < lost < 4.1  # COM_OF_LOSS_T 1 s after the last heartbeat
    np.testing.assert_allclose(trace[-1, 3:6], 0.0, atol=0.15)  # Hold brakes


def test_px4_body_rates_are_frd() -> None:
    sim = QuadrotorSim(ROBOT, hardware_from_mapping({"firmware": "px4"}, ROBOT))
    mode_topic, on_mode = handler(sim, "px4_msgs/msg/OffboardControlMode")
    topic, on_rates = handler(sim, "px4_msgs/msg/VehicleRatesSetpoint")
    hover = NOMINAL.total_mass * GRAVITY / (4 * NOMINAL.kf * NOMINAL.max_rpm**2)

    def send() -> None:
        sim.deliver(mode_topic, on_mode, Msg(position=False, velocity=False, body_rate=True))
        sim.deliver(topic, on_rates, Msg(roll=0.0, pitch=0.6, yaw=0.8, thrust_body=[0.0, 0.0, -hover]))
    trace = np.array(fly(sim, 0.8, send, every=0.01))
    rates = trace[-50:, 6:9].mean(axis=0)
    np.testing.assert_allclose(rates, [0.0, -0.6, -0.8], atol=0.05)  # FRD (0, 0.6, 0.8) -> FLU


@pytest.mark.parametrize("target", [[0.8, 0.0, 0.0], [0.0, 0.8, 0.0], [0.0, 0.0, 1.0]])
def test_deploy_motor_mixer_turns_the_vehicle_the_way_it_asks(target: list[float]) -> None:
    """The node's per-rotor mixer (``rotor_fractions``) and PX4 motor order, flown on this airframe."""
    from sim2real.ros2.adapters import LowLevelCommand, Px4MotorsAdapter
    from sim2real.ros2.drone import PX4_QUAD_X_ORDER, DroneModel, rotor_fractions

    sent: dict[str, Any] = {}
    capture = Msg(advertise=lambda topic, type_name: lambda fields: sent.__setitem__(type_name, fields))
    adapter = Px4MotorsAdapter(capture, "/fmu/in/actuator_motors", "/fmu/in/offboard_control_mode", PX4_QUAD_X_ORDER)
    model = DroneModel.from_robot(ROBOT)
    sim = QuadrotorSim(ROBOT, hardware_from_mapping({"firmware": "px4"}, ROBOT))
    mode_topic, on_mode = handler(sim, "px4_msgs/msg/OffboardControlMode")
    topic, on_motors = handler(sim, "px4_msgs/msg/ActuatorMotors")

    def send() -> None:
        rates = sim.dyn.state().body_rates
        adapter.send(LowLevelCommand(motors=rotor_fractions(model, model.hover_fraction, np.array(target), rates)), 0)
        flags = {k: v for k, v in sent["px4_msgs/msg/OffboardControlMode"].items() if k != "timestamp"}
        sim.deliver(mode_topic, on_mode, Msg(**flags))
        sim.deliver(topic, on_motors, Msg(control=sent["px4_msgs/msg/ActuatorMotors"]["control"]))
    trace = np.array(fly(sim, 0.5, send, every=0.004))
    assert [e["event"] for e in sim.summary()["safety_events"]] == ["offboard_engaged"]
    np.testing.assert_allclose(trace[-25:, 6:9].mean(axis=0), target, atol=0.1)


def test_crazyflie_watchdog_levels_then_stops_the_motors() -> None:
    sim = QuadrotorSim(ROBOT, hardware_from_mapping(None, ROBOT))
    topic, h = handler(sim, "crazyflie_interfaces/msg/VelocityWorld")
    fly(sim, 4.0, lambda: sim.deliver(topic, h, Msg(vel=v3(0.0, 0.0, 0.0), yaw_rate=0.0)) if sim.time < 0.5 else None)
    out = sim.summary()
    times = {e["event"]: e["t"] for e in out["safety_events"]}
    assert times["watchdog_level"] == pytest.approx(0.48 + 0.5, abs=0.03)
    assert times["watchdog_motors_off"] == pytest.approx(0.48 + 2.0, abs=0.03)
    assert out["ground_contact"]["crash"] and out["ground_contact"]["first_s"] > times["watchdog_motors_off"]


def test_sensor_streams_rates_delay_and_noise() -> None:
    hw = hardware_from_mapping({"sensors": {"odometry_hz": 50, "imu_hz": 200, "pose_hz": 0, "delay": 0.02,
                                            "position_noise": 0.01}}, ROBOT)
    sim = QuadrotorSim(ROBOT, hw, seed=3)
    got: dict[str, list] = {"odometry": [], "imu": []}
    while sim.time < 1.0 - 1e-9:
        for key, fields in sim.step():
            got[key].append((sim.time, fields))
    assert set(sim.streams) == {"odometry", "imu"} and len(got["odometry"]) == 50 and len(got["imu"]) == 197
    first_t, first = got["odometry"][0]
    stamp = first["header"]["stamp"]["sec"] + first["header"]["stamp"]["nanosec"] * 1e-9
    assert first_t - stamp == pytest.approx(0.02, abs=1e-6)  # published 20 ms after it was measured
    z = np.array([f["pose"]["pose"]["position"]["z"] for _, f in got["odometry"]])
    assert 0.005 < z.std() < 0.02  # 1 cm noise on a hovering vehicle
    imu = got["imu"][-1][1]
    assert imu["linear_acceleration"]["z"] == pytest.approx(GRAVITY, abs=0.05)


def test_crazyswarm2_odometry_twist_is_world_linear() -> None:
    hw = hardware_from_mapping({"start": {"yaw": 1.2}, "sensors": {"odometry_twist": "crazyswarm2"}}, ROBOT)
    sim = QuadrotorSim(ROBOT, hw)
    topic, h = handler(sim, "crazyflie_interfaces/msg/VelocityWorld")
    odom = []

    def send() -> None:
        sim.deliver(topic, h, Msg(vel=v3(0.5, 0.0, 0.0), yaw_rate=0.0))
    while sim.time < 2.0:
        if round(sim.time / sim.dyn.dt) % 10 == 0:
            send()
        odom += [f for key, f in sim.step() if key == "odometry"]
    twist = odom[-1]["twist"]["twist"]
    assert twist["linear"]["x"] == pytest.approx(0.5, abs=0.03) and abs(twist["linear"]["y"]) < 0.03
    assert twist["angular"] == {"x": 0.0, "y": 0.0, "z": 0.0}


def test_px4_vehicle_odometry_is_ned_frd() -> None:
    hw = hardware_from_mapping({"firmware": "px4", "start": {"yaw": 1.2}}, ROBOT)
    sim = QuadrotorSim(ROBOT, hw)
    sim.dyn.data.qvel[:3] = [0.2, -0.1, 0.3]   # ENU velocity, body rates FLU
    sim.dyn.data.qvel[3:6] = [0.1, 0.2, 0.3]
    msgs = []
    while not msgs:
        msgs = [f for key, f in sim.step() if key == "px4_odometry"]
    odom, s = msgs[0], sim.dyn.state()
    np.testing.assert_allclose(odom["position"], [s.position[1], s.position[0], -s.position[2]], atol=1e-9)
    np.testing.assert_allclose(odom["velocity"], [s.velocity[1], s.velocity[0], -s.velocity[2]], atol=1e-9)
    np.testing.assert_allclose(odom["angular_velocity"], s.body_rates * [1, -1, -1], atol=1e-9)
    w, x, y, z = odom["q"]
    assert math.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z)) == pytest.approx(math.pi / 2 - 1.2, abs=1e-3)
    assert "/fmu/out/vehicle_odometry" in sim.summary()["published"]


# --- hardware files -------------------------------------------------------------------------

def test_draw_is_reproducible_and_round_trips() -> None:
    a = draw_hardware(str(DRAW), ROBOT, np.random.default_rng(7))
    b = draw_hardware(str(DRAW), ROBOT, np.random.default_rng(7))
    c = draw_hardware(str(DRAW), ROBOT, np.random.default_rng(8))
    assert a.to_dict() == b.to_dict() and a.to_dict() != c.to_dict()
    assert 0.9 <= a.to_dict()["body"]["mass_factor"] <= 1.15
    assert hardware_from_mapping(json.loads(json.dumps(a.to_dict())), ROBOT).to_dict() == a.to_dict()
    shipped = load_hardware(str(ROOT / "configs" / "hardware" / "quadrotor.yaml"), ROBOT)
    assert shipped.airframe.total_mass == pytest.approx(0.027 * 1.04 + 0.003)


BAD_FILES = [
    ("body: {mass_factor: heavy}\n", "body.mass_factor: expected a finite number > 0"),
    ("rotors: {motor_tua: 0.02}\n", "rotors.motor_tua: unknown key"),
    ("aero: {wind_force: [1, 2]}\n", "aero.wind_force: expected a list of 3 numbers"),
    ("firmware: betaflight\n", "firmware: expected one of ['crazyflie', 'px4']"),
    ("physics_hz: 200\n", "physics_hz: expected a finite number >= 500"),
    ("body: {payload_mass: 0.05}\n", "rotors: the rotors lift"),
    ("body: [1, 2\n", "not valid YAML"),
]


@pytest.mark.parametrize("text, where", BAD_FILES)
def test_bad_hardware_file_names_file_and_key(tmp_path: Path, text: str, where: str) -> None:
    path = tmp_path / "hw.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_hardware(str(path), ROBOT)
    assert str(path) in str(err.value) and where in str(err.value)


def test_bad_hardware_file_through_the_cli_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "hw.yaml"
    path.write_text(BAD_FILES[0][0])
    proc = subprocess.run([sys.executable, "-m", "sim2real", "sim2sim", "--robot", "quadrotor", "--hardware", str(path),
                           "--duration", "1", "--transport", "dds"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2 and BAD_FILES[0][1] in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_bad_draw_file_names_the_key(tmp_path: Path) -> None:
    path = tmp_path / "draw.yaml"
    path.write_text("rotors: {motor_tau: {distribution: log_uniform, low: 0.0, high: 0.05}}\n")
    with pytest.raises(ConfigError, match=r"draw.yaml: rotors.motor_tau: expected finite low <= high"):
        draw_hardware(str(path), ROBOT, np.random.default_rng(0))


# --- end to end over DDS ----------------------------------------------------------------------

GO_TO = """
import sys, torch, yaml
class GoTo(torch.nn.Module):
    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        v = torch.clamp(obs[..., 6:9] * 2.0, -1.0, 1.0)
        return torch.cat([v, torch.zeros_like(v[..., :1])], dim=-1)
torch.jit.script(GoTo()).save(sys.argv[1] + "/policy.pt")
spec = {"format": "sim2real-policy/1", "robot": "quadrotor", "env_id": "sim2real/QuadrotorWaypoint-v0",
        "control_rate_hz": 50.0, "observation": {"size": 9, "history": 1, "layout": [
            ["base_position", 3], ["base_linear_velocity", 3], ["target_relative", 3]]},
        "action": {"size": 4, "mode": "velocity", "joints": [], "scale": [0.5] * 4, "offset": [0.0] * 4}}
open(sys.argv[1] + "/policy.yaml", "w").write(yaml.safe_dump(spec))
"""


def deploy_against_mujoco_vehicle(tmp_path: Path, hardware: Path, *deploy_args: str) -> dict:
    """Run ``sim2real sim2sim`` (quadrotor, ``hardware``) and ``sim2real deploy --transport dds
    DEPLOY_ARGS`` (6 s, the policy in ``tmp_path``) as two processes; stop the vehicle when deploy
    ends and return its JSON summary."""
    from test_ros2_e2e import domain_id

    domain, summary = domain_id(), tmp_path / "summary.json"
    sim = subprocess.Popen([sys.executable, "-m", "sim2real", "sim2sim", "--robot", "quadrotor", "--hardware",
                            str(hardware), "--transport", "dds", "--domain-id", str(domain), "--duration", "120",
                            "--summary", str(summary)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
    try:
        deploy = subprocess.run([sys.executable, "-m", "sim2real", "deploy", "--policy", str(tmp_path / "policy.pt"),
                                 "--transport", "dds", "--domain-id", str(domain), "--duration", "6", *deploy_args],
                                cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert deploy.returncode == 0, deploy.stderr
        sim.send_signal(signal.SIGTERM)  # the vehicle stops as the policy does and writes its summary
        _, err = sim.communicate(timeout=60)
        assert sim.returncode == 0, err
    finally:
        if sim.poll() is None:
            sim.kill()
            sim.communicate(timeout=10)
    return json.loads(summary.read_text())


@pytest.mark.slow
@pytest.mark.parametrize("firmware, output", [("crazyflie", "crazyswarm_velocity"), ("px4", "px4_offboard")])
def test_deploy_flies_the_mujoco_quadrotor_to_the_goal_over_dds(tmp_path: Path, firmware: str, output: str) -> None:
    """``sim2real sim2sim`` and ``sim2real deploy --transport dds`` as two processes: a go-to-goal
    velocity policy (exported TorchScript) flies the vehicle from (0, 0, 1) to the goal."""
    pytest.importorskip("cyclonedds")
    pytest.importorskip("torch")

    script = tmp_path / "export_go_to.py"  # TorchScript compiles from source: a file, not -c
    script.write_text(GO_TO)
    subprocess.run([sys.executable, str(script), str(tmp_path)], check=True, timeout=120)
    hw = tmp_path / "hw.yaml"
    hw.write_text((ROOT / "configs" / "hardware" / "quadrotor.yaml").read_text().replace(
        "firmware: crazyflie", f"firmware: {firmware}"))
    goal = [0.5, 0.3, 1.2]
    out = deploy_against_mujoco_vehicle(tmp_path, hw, "--output", output, "--goal", *map(str, goal))
    assert sum(c["count"] for c in out["commands"].values()) > 150  # 50 Hz for ~5 s
    assert out["interrupted"] and out["published"]["/cf231/odom"] > 500  # 100 Hz while deploy ran 6 s
    # where the vehicle was when the last setpoint reached its firmware (after that a Crazyflie's
    # setpoint watchdog levels it and then stops the motors; PX4 holds)
    at_stop = np.array(out["last_command"]["position"])
    assert np.linalg.norm(at_stop - goal) < 0.1, json.dumps(out)
    crash = out["ground_contact"]["crash"]
    assert out["trajectory"]["max_tilt_rad"] < 0.4 and (not crash or out["ground_contact"]["first_s"] > out[
        "last_command"]["t"] + 2.0)


HOVER_RATES = """
import sys, torch, yaml
T2 = float(sys.argv[2])  # half the collective maximum thrust, N
MASS = float(sys.argv[3])
class Hover(torch.nn.Module):
    def __init__(self, mass: float, t2: float) -> None:
        super().__init__()
        self.mass, self.t2 = mass, t2

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        up = obs[..., 9:12]  # world up in the body frame
        force = self.mass * (9.81 + 4.0 * obs[..., 20] - 2.5 * obs[..., 14]) / torch.clamp(up[..., 2], min=0.5)
        out = torch.stack([force / self.t2 - 1.0, -up[..., 1], up[..., 0], torch.zeros_like(force)], dim=-1)
        return torch.clamp(out, -1.0, 1.0)
torch.jit.script(Hover(MASS, T2)).save(sys.argv[1] + "/policy.pt")
layout = [["base_position", 3], ["base_rotation", 9], ["base_linear_velocity", 3], ["base_angular_velocity", 3],
          ["target_relative", 3], ["previous_action", 4]]
spec = {"format": "sim2real-policy/1", "robot": "quadrotor", "env_id": "sim2real/QuadrotorHoverRates-v0",
        "control_rate_hz": 50.0, "observation": {"size": 25, "history": 1, "layout": layout},
        "action": {"size": 4, "mode": "thrust_rates", "joints": [], "scale": [T2, 4.0, 4.0, 2.0],
                   "offset": [T2, 0.0, 0.0, 0.0], "low": [0.0, -4.0, -4.0, -2.0], "high": [2 * T2, 4.0, 4.0, 2.0]}}
open(sys.argv[1] + "/policy.yaml", "w").write(yaml.safe_dump(spec))
"""


@pytest.mark.slow
def test_deploy_thrust_rates_policy_holds_the_px4_vehicle_over_dds(tmp_path: Path) -> None:
    """A ``thrust_rates`` policy (level out, hold the goal height) through ``px4_rates`` on the MuJoCo PX4 vehicle."""
    pytest.importorskip("cyclonedds")
    pytest.importorskip("torch")

    script = tmp_path / "export_hover.py"
    script.write_text(HOVER_RATES)
    t2 = 2 * NOMINAL.kf * NOMINAL.max_rpm**2
    subprocess.run([sys.executable, str(script), str(tmp_path), str(t2), str(NOMINAL.mass)], check=True, timeout=120)
    hw = tmp_path / "hw.yaml"
    hw.write_text("firmware: px4\nstart: {position: [0.0, 0.0, 0.8]}\n")
    out = deploy_against_mujoco_vehicle(tmp_path, hw, "--goal", "0", "0", "1.0")
    assert out["commands"]["/fmu/in/vehicle_rates_setpoint"]["count"] > 150
    assert out["event_counts"].get("offboard_engaged") == 1
    traj = out["trajectory"]
    assert traj["max_z"] > 0.95 and traj["max_tilt_rad"] < 0.3 and not out["ground_contact"]["crash"], out
