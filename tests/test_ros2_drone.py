"""Low-level drone outputs: thrust_rates → px4_msgs/VehicleRatesSetpoint, motor → px4_msgs/ActuatorMotors.

Unit conversions are checked against the real quadrotor envs (the sidecar comes from their
``action_spec()``), frames FLU → FRD, motor order, and the drone safety rules on the node
with an in-process fake transport and a deterministic clock.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
import pytest

from sim2real.errors import ConfigError
from sim2real.robots import load_robot
from sim2real.ros2.drone import (
    PX4_QUAD_X_ORDER, DroneModel, flu_to_frd, level_out_rates, level_out_thrust, motor_order, rotor_fractions,
)
from sim2real.ros2.observation import quat_to_matrix
from sim2real.ros2.policy import parse_policy_spec

from test_ros2_node import FakeTransport

QUAD = load_robot("quadrotor")
MODEL = DroneModel.from_robot(QUAD)
TOPICS = QUAD.ros2.topics
ODOM = TOPICS["odometry"]
MODE_TOPIC, RATES_TOPIC, MOTORS_TOPIC = (TOPICS["px4_offboard_mode"], TOPICS["px4_rates_setpoint"],
                                         TOPICS["px4_actuator_motors"])
LAYOUT = [["base_position", 3], ["base_rotation", 9], ["base_linear_velocity", 3], ["base_angular_velocity", 3],
          ["target_relative", 3], ["previous_action", 4]]
RATE = 50.0


@pytest.fixture(scope="module")
def envs() -> dict[str, Any]:
    """The real envs, for their action_spec() and command conversion."""
    gym = pytest.importorskip("gymnasium")
    import sim2real.envs  # noqa: F401  (registers the ids)

    out = {"thrust_rates": gym.make("sim2real/QuadrotorHoverRates-v0").unwrapped,
           "motor": gym.make("sim2real/QuadrotorHover-v0").unwrapped}
    yield out
    for env in out.values():
        env.close()


def sidecar(env: Any) -> dict[str, Any]:
    return {"format": "sim2real-policy/1", "robot": "quadrotor", "env_id": "sim2real/QuadrotorHoverRates-v0",
            "control_rate_hz": RATE, "observation": {"size": 25, "layout": LAYOUT}, "action": {"size": 4,
                                                                                                  **env.action_spec()}}


def quat_from_rpy(roll: float, pitch: float, yaw: float) -> np.ndarray:
    cr, sr, cp, sp, cy, sy = (math.cos(roll / 2), math.sin(roll / 2), math.cos(pitch / 2), math.sin(pitch / 2),
                              math.cos(yaw / 2), math.sin(yaw / 2))
    return np.array([sr * cp * cy - cr * sp * sy, cr * sp * cy + sr * cp * sy, cr * cp * sy - sr * sp * cy,
                     cr * cp * cy + sr * sp * sy])


def integrate(q: np.ndarray, rates_body: np.ndarray, dt: float) -> np.ndarray:
    """Quaternion (xyzw) after body rates (FLU) for dt."""
    x, y, z, w = q
    p, qq, r = rates_body
    dq = 0.5 * np.array([w * p + y * r - z * qq, w * qq + z * p - x * r, w * r + x * qq - y * p,
                         -x * p - y * qq - z * r])
    out = q + dq * dt
    return out / np.linalg.norm(out)


def tilt(q: np.ndarray) -> float:
    return math.acos(float(np.clip(quat_to_matrix(q)[2, 2], -1.0, 1.0)))


# --- conversions --------------------------------------------------------------------------
def test_frames_and_model_numbers() -> None:
    np.testing.assert_allclose(flu_to_frd([1.0, 2.0, 3.0]), [1.0, -2.0, -3.0])
    np.testing.assert_allclose(flu_to_frd(flu_to_frd([0.3, -0.2, 0.1])), [0.3, -0.2, 0.1])
    kf, rpm = QUAD.model_params["kf"], QUAD.model_params["max_rpm"]
    assert MODEL.max_thrust == pytest.approx(4 * kf * rpm**2)
    assert MODEL.mass == pytest.approx(0.027)  # from the URDF
    assert MODEL.hover_fraction == pytest.approx(0.027 * 9.81 / MODEL.max_thrust)
    assert DroneModel.from_robot(QUAD, hover_fraction=0.3).hover_fraction == 0.3
    assert motor_order([0, 2, 3, 1]) == PX4_QUAD_X_ORDER
    with pytest.raises(ConfigError, match=r"px4\.motor_order: expected a permutation"):
        motor_order([0, 1, 1, 2])


def test_level_out_rates_bring_the_body_level() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        roll, pitch = rng.uniform(-1.0, 1.0, size=2)
        q = quat_from_rpy(roll, pitch, rng.uniform(-math.pi, math.pi))
        yaw0 = math.atan2(quat_to_matrix(q)[1, 0], quat_to_matrix(q)[0, 0])
        start = tilt(q)
        for _ in range(300):  # 1.5 s at 200 Hz with the rates held by an ideal rate loop
            rates = level_out_rates(q, 4.0, np.array([4.0, 4.0, 2.0]))
            assert rates[2] == 0.0
            q = integrate(q, rates, 0.005)
        assert tilt(q) < 0.05 * start + 1e-3
        yaw1 = math.atan2(quat_to_matrix(q)[1, 0], quat_to_matrix(q)[0, 0])
        assert abs(math.remainder(yaw1 - yaw0, 2 * math.pi)) < 0.6  # no commanded yaw motion (tilt coupling only)
    # level already: zero rates, hover thrust; tilted: more thrust; climbing: less
    assert np.all(level_out_rates(np.array([0.0, 0.0, 0.0, 1.0]), 4.0, np.full(3, 4.0)) == 0.0)
    hover = MODEL.hover_fraction
    assert level_out_thrust(MODEL, np.array([0.0, 0.0, 0.0, 1.0]), 0.0) == pytest.approx(hover)
    assert level_out_thrust(MODEL, quat_from_rpy(0.5, 0.0, 0.0), 0.0) == pytest.approx(hover / math.cos(0.5))
    assert level_out_thrust(MODEL, None, 1.0) < hover


def test_rotor_fractions_invert_the_mixer() -> None:
    equal = rotor_fractions(MODEL, MODEL.hover_fraction, np.zeros(3), None)
    np.testing.assert_allclose(equal, MODEL.hover_fraction)
    cmd, now = np.array([1.0, -0.5, 0.2]), np.zeros(3)
    fr = rotor_fractions(MODEL, 0.45, cmd, now)
    wrench = MODEL.mixer() @ (fr * MODEL.rotor_max_thrust)
    assert wrench[0] == pytest.approx(0.45 * MODEL.max_thrust)
    np.testing.assert_allclose(wrench[1:], MODEL.inertia * MODEL.rate_gain * cmd, rtol=1e-9)


@pytest.mark.parametrize("mode", ["thrust_rates", "motor"])
def test_node_conversion_matches_the_env(envs: dict[str, Any], mode: str) -> None:
    env = envs[mode]
    node, _ = drone_node(mode, lambda obs: np.zeros(4), env=env)
    ctl = node.controller
    rng = np.random.default_rng(1)
    for a in [env.hover_action, *rng.uniform(-1, 1, size=(5, 4))]:
        cmd = env._command(np.asarray(a))  # thrust_rates: [F N, p, q, r]; motor: rotor speed (rpm)
        vec = ctl.to_vector(np.asarray(a))
        if mode == "thrust_rates":
            assert vec[0] * MODEL.max_thrust == pytest.approx(cmd[0])
            np.testing.assert_allclose(vec[1:], cmd[1:])
        else:
            np.testing.assert_allclose(vec * MODEL.max_rpm**2, cmd**2, rtol=1e-9)
        np.testing.assert_allclose(ctl.to_action(vec), a, atol=1e-9)
    hover = ctl.to_vector(env.hover_action)
    assert hover[0] == pytest.approx(MODEL.hover_fraction)


# --- node -----------------------------------------------------------------------------------
def drone_node(mode: str, policy: Callable[[np.ndarray], np.ndarray], env: Any = None,
               **params: Any) -> tuple[Any, FakeTransport]:
    from sim2real.ros2.node import DeployNode

    if env is None:
        w2 = MODEL.max_rpm**2 / 2
        t2 = MODEL.max_thrust / 2
        act = ({"mode": "motor", "scale": [w2] * 4, "offset": [w2] * 4} if mode == "motor" else
               {"mode": "thrust_rates", "scale": [t2, 4.0, 4.0, 2.0], "offset": [t2, 0.0, 0.0, 0.0],
                "low": [0.0, -4.0, -4.0, -2.0], "high": [2 * t2, 4.0, 4.0, 2.0]})
        raw = {"format": "sim2real-policy/1", "robot": "quadrotor", "control_rate_hz": RATE,
               "observation": {"size": 25, "layout": LAYOUT}, "action": {"size": 4, "joints": [], **act}}
    else:
        raw = sidecar(env)
    spec = parse_policy_spec(raw, "policy.yaml")
    transport = FakeTransport()
    base = {"robot": "quadrotor", "goal": [0.0, 0.0, 1.0], "px4.heartbeat_lead_s": 0.1, "safety.watchdog_periods": 3}
    node = DeployNode({**base, **params}, transport=transport, policy=policy, spec=spec)
    return node, transport


def odom(transport: FakeTransport, t: float, monkeypatch: Any, q: np.ndarray | None = None,
         position: tuple[float, float, float] = (0.0, 0.0, 1.0), nan: bool = False) -> None:
    q = np.array([0.0, 0.0, 0.0, 1.0]) if q is None else q
    monkeypatch.setattr("sim2real.ros2.node.time.monotonic", lambda: t)
    x = float("nan") if nan else position[0]
    transport.deliver(ODOM, {"pose": {"pose": {"position": {"x": x, "y": position[1], "z": position[2]},
                                               "orientation": dict(zip("xyzw", map(float, q)))}}})


def run(node: Any, tr: FakeTransport, monkeypatch: Any, ticks: range, **kw: Any) -> None:
    for k in ticks:
        t = k / RATE
        if kw.get("states", True):
            odom(tr, t, monkeypatch, **{key: v for key, v in kw.items() if key != "states"})
        tr.clock = int(t * 1e9)
        node.tick(t)


def test_thrust_rates_heartbeat_frd_and_thrust_limits(monkeypatch: Any) -> None:
    action = np.array([1.0, 0.5, 0.25, -0.5])  # full thrust, p = 2, q = 1, r = -1 rad/s (FLU)
    node, tr = drone_node("thrust_rates", lambda obs: action, **{"safety.max_thrust": 0.8,
                                                                    "safety.max_thrust_rate": 5.0})
    tilted = quat_from_rpy(0.3, 0.0, 0.0)  # rolled right-wing-down... positive roll about +x (FLU)
    run(node, tr, monkeypatch, range(0, 5), q=tilted)  # heartbeat lead (0.1 s = 5 ticks): level out
    modes, sps = tr.published[MODE_TOPIC], tr.published[RATES_TOPIC]
    assert len(modes) == len(sps) == 5
    assert all(m["body_rate"] and not any(m.get(k) for k in ("position", "velocity", "direct_actuator"))
               for m in modes)
    lead = sps[0]
    assert lead["roll"] < 0 and lead["pitch"] == 0.0 and lead["yaw"] == 0.0  # roll back: -x (FLU) = -x (FRD)
    assert lead["thrust_body"][:2] == [0.0, 0.0]
    assert -lead["thrust_body"][2] == pytest.approx(MODEL.hover_fraction / math.cos(0.3))
    run(node, tr, monkeypatch, range(5, 40))
    assert node.controller.phase == "running" and node.stats.commands == 40
    fly = sps[-1]
    # FLU (2, 1, -1) rad/s -> FRD (2, -1, 1); thrust clipped to safety.max_thrust, up = -z
    assert (fly["roll"], fly["pitch"], fly["yaw"]) == pytest.approx((2.0, -1.0, 1.0))
    assert fly["thrust_body"][2] == pytest.approx(-0.8)
    thrusts = -np.array([s["thrust_body"][2] for s in sps])
    assert np.max(np.abs(np.diff(thrusts))) <= 5.0 / RATE + 1e-9  # thrust rate limit
    assert node.safety.counts["rate_limit"] > 0 and node.safety.counts["clip"] > 0
    assert modes[-1]["timestamp"] == int(39 / RATE * 1e6) and fly["timestamp"] == modes[-1]["timestamp"]


def test_nan_levels_out_and_never_cuts_thrust(monkeypatch: Any) -> None:
    calls = {"n": 0}

    def policy(obs: np.ndarray) -> np.ndarray:
        calls["n"] += 1
        return np.full(4, np.nan) if calls["n"] in (3, 4) else np.zeros(4)

    # resume: auto after one fresh state, so the policy runs again between the faults
    node, tr = drone_node("thrust_rates", policy, **{"px4.heartbeat_lead_s": 0.0, "safety.resume": "auto",
                                                     "safety.resume_states": 1})
    tilted = quat_from_rpy(0.0, -0.2, 0.5)
    run(node, tr, monkeypatch, range(0, 2), q=tilted)
    run(node, tr, monkeypatch, range(2, 4), q=tilted, nan=True)  # non-finite observation
    run(node, tr, monkeypatch, range(4, 10), q=tilted)  # policy NaN on its calls 3 and 4
    sps = tr.published[RATES_TOPIC]
    assert node.safety.counts["nan_observation"] == 1 and node.safety.counts["nan_action"] == 1
    trace_holds = [k for k, s in enumerate(sps) if s["pitch"] != 0.0 and s["roll"] == 0.0]
    # the holds level out (pitch back up: FLU q > 0 -> FRD pitch < 0), thrust stays near hover
    assert len(trace_holds) == 4
    for k in trace_holds:
        assert sps[k]["pitch"] < 0.0 and -sps[k]["thrust_body"][2] > 0.3
    assert all(np.isfinite([s["roll"], s["pitch"], s["yaw"], *s["thrust_body"]]).all() for s in sps)
    assert len(tr.published[MODE_TOPIC]) == len(sps)  # heartbeat kept: the node still flies the drone


def test_watchdog_rate_hold_and_heartbeat_release(monkeypatch: Any) -> None:
    for release in (True, False):
        node, tr = drone_node("thrust_rates", lambda obs: np.array([0.2, 0.3, 0.0, 0.0]),
                              **{"px4.heartbeat_lead_s": 0.0, "px4.release_on_fault": release})
        run(node, tr, monkeypatch, range(0, 10), q=quat_from_rpy(0.2, 0.0, 0.0))
        run(node, tr, monkeypatch, range(10, 30), states=False)  # odometry stops
        sps, modes = tr.published[RATES_TOPIC], tr.published[MODE_TOPIC]
        assert node.safety.counts["stale_observation"] == 1
        stale = [s for s in sps[-10:]]
        # rate hold: zero rates (no attitude feedback from a stale state), hover thrust (rate-limited towards it)
        assert all((s["roll"], s["pitch"], s["yaw"]) == (0.0, 0.0, 0.0) for s in stale)
        assert -stale[-1]["thrust_body"][2] == pytest.approx(MODEL.hover_fraction)
        assert len(sps) == 30
        assert len(modes) == (10 + 3 if release else 30)  # 3 periods until the watchdog trips


@pytest.mark.parametrize("action", ["level_out", "kill"])
def test_estop_latches(monkeypatch: Any, action: str) -> None:
    node, tr = drone_node("motor", lambda obs: np.array([0.5, -0.5, 0.5, -0.5]),
                          **{"px4.heartbeat_lead_s": 0.0, "safety.drone_estop": action})
    run(node, tr, monkeypatch, range(0, 5))
    tr.deliver(TOPICS["estop"], {"data": True})
    run(node, tr, monkeypatch, range(5, 10))
    tr.deliver(TOPICS["estop"], {"data": False})  # does not release it
    run(node, tr, monkeypatch, range(10, 20))
    motors = np.array([m["control"] for m in tr.published[MOTORS_TOPIC]])
    assert node.safety.estopped and node.safety.counts["estop"] == 1
    assert len(tr.published[MODE_TOPIC]) == 5  # heartbeat released: PX4's failsafe takes over
    if action == "kill":
        assert np.all(np.isnan(motors[5:]))  # NaN = disarmed: motors stopped
    else:
        assert np.all(np.isfinite(motors[5:, :4])) and np.all(np.isnan(motors[:, 4:]))
        np.testing.assert_allclose(motors[-1, :4], MODEL.hover_fraction, rtol=1e-6)  # level: equal hover thrust


def test_motor_order_and_direct_actuator_heartbeat(monkeypatch: Any) -> None:
    action = np.array([-0.6, -0.2, 0.2, 0.6])  # distinct per env rotor (FR, BR, BL, FL)
    fractions = (action + 1) / 2
    for order in ([0, 2, 3, 1], [3, 2, 1, 0]):
        node, tr = drone_node("motor", lambda obs: action, **{"px4.heartbeat_lead_s": 0.0,
                                                               "safety.max_thrust_rate": 100.0,
                                                               "px4.motor_order": order})
        run(node, tr, monkeypatch, range(0, 3))
        msg = tr.published[MOTORS_TOPIC][-1]
        np.testing.assert_allclose(msg["control"][:4], fractions[order], rtol=1e-6)
        assert np.all(np.isnan(msg["control"][4:])) and msg["reversible_flags"] == 0
        mode = tr.published[MODE_TOPIC][-1]
        assert mode["direct_actuator"] and not mode.get("body_rate")
    # PX4 quad X: motor 1 FR, 2 BL, 3 FL, 4 BR
    assert [QUAD.links[i] for i in PX4_QUAD_X_ORDER] == ["prop0_link", "prop2_link", "prop3_link", "prop1_link"]


def test_output_and_mode_mismatches_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="crazyflie_interfaces .* no body-rate/thrust"):
        drone_node("thrust_rates", lambda obs: np.zeros(4), output="crazyswarm_velocity")
    with pytest.raises(ConfigError, match="cannot carry a 'motor' policy; use 'px4_motors'"):
        drone_node("motor", lambda obs: np.zeros(4), output="px4_rates")
    with pytest.raises(ConfigError, match="px4.motor_order: expected a permutation"):
        drone_node("motor", lambda obs: np.zeros(4), **{"px4.motor_order": [0, 0, 1, 2]})
    node, _ = drone_node("motor", lambda obs: np.zeros(4), output="auto")
    assert node.adapter.type_name == "px4_msgs/msg/ActuatorMotors"


def test_px4_msgs_version_selects_the_offboard_mode_layout(monkeypatch: Any) -> None:
    for version, type_name, flag in ((1.14, "px4_msgs/msg/OffboardControlMode@v1.14", "actuator"),
                                     ("1.15", "px4_msgs/msg/OffboardControlMode", "direct_actuator")):
        node, tr = drone_node("motor", lambda obs: np.zeros(4), px4_msgs_version=version,
                              **{"px4.heartbeat_lead_s": 0.0})
        assert node.adapter.mode_type == type_name
        run(node, tr, monkeypatch, range(0, 3))
        assert tr.published[MODE_TOPIC][-1] == {"timestamp": tr.published[MODE_TOPIC][-1]["timestamp"], flag: True}
