"""Quadrotor system identification: identification flights, rosbag2 round trips with the deploy
bridge's message conventions, exact replay, parameter recovery, narrowed profile, CLI and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sim2real.errors import ConfigError, LogError, Sim2RealError
from sim2real.profiles import load_profile
from sim2real.robots import load_robot
from sim2real.sysid.calibrate import CalibrationConfig, calibrate
from sim2real.sysid.quad_bag import (
    ACTUATOR_MOTORS,
    ACTUATOR_MOTORS_MSG,
    read_quad_bag,
    write_quad_bag,
    write_quad_csv,
)
from sim2real.sysid.quad_calibrate import narrowed_quad_profile, write_quad_outputs
from sim2real.sysid.quad_params import apply_quad_params, parse_quad_params
from sim2real.sysid.quad_record import motor_excitation, record_quadrotor
from sim2real.sysid.quad_replay import (
    QuadWindowReplay,
    align_quad,
    make_quad_windows,
    quad_signal_scales,
)

ROBOT = load_robot("quadrotor")
NOMINAL = load_profile("nominal", robot=ROBOT)
HIDDEN = {"kf": 1.12, "inertia": 0.87, "km": 1.1, "motor_tau": 1.2, "delay": 4.0}


def _plant(values: dict[str, float]):
    specs = parse_quad_params(",".join(values), ROBOT)

    def plant(world) -> None:
        apply_quad_params(world, specs, [values[s.name] for s in specs])
    return plant


@pytest.fixture(scope="module")
def clean_flight():
    return record_quadrotor(ROBOT, NOMINAL, 5, "multisine", 8.0, truth_override=_plant(HIDDEN))


@pytest.fixture(scope="module")
def noisy_flight():
    return record_quadrotor(ROBOT, NOMINAL, 6, "prbs", 12.0, pos_noise=1e-3, vel_noise=0.01, att_noise=2e-3,
                            rate_noise=0.02, truth_override=_plant(HIDDEN))


def test_parse_quad_params() -> None:
    specs = parse_quad_params("mass,inertia,kf,km,motor_tau,arm_length,drag,drag_z,delay", ROBOT)
    assert [s.targets for s in specs][:3] == [("base",), ("base",), ("kf",)]
    assert specs[-1].integer and specs[-1].high == 2 * ROBOT.control.substeps
    assert all(s.log for s in specs[:-1])
    prior = load_profile("quadrotor", robot=ROBOT)
    kf, delay = parse_quad_params("kf,delay", ROBOT, profile=prior)
    assert (kf.low, kf.high) == (0.8, 1.2)
    assert (delay.low, delay.high) == (0.0, 8.0)  # 0.03 s at 240 Hz, rounded up
    (kf,) = parse_quad_params("kf", ROBOT, bounds={"kf": (0.5, 1.5)})
    assert (kf.low, kf.high) == (0.5, 1.5)
    with pytest.raises(ConfigError, match="unknown parameter 'damping' for a quadrotor"):
        parse_quad_params("kf,damping", ROBOT)
    with pytest.raises(ConfigError, match="takes no target"):
        parse_quad_params("kf:base", ROBOT)
    with pytest.raises(ConfigError, match="given twice"):
        parse_quad_params("kf,kf", ROBOT)


def test_flight_stays_airborne_and_excites_every_channel(clean_flight) -> None:
    log, truth = clean_flight
    o, mc = log.odometry, log.motor_command
    assert len(o) == 8 * 48 + 1 and mc.values.shape == (8 * 48, 4)
    assert o.position[:, 2].min() > 0.5 and np.isfinite(o.position).all()
    assert 0.0 <= mc.values.min() and mc.values.max() <= 1.0
    # collective, roll, pitch and yaw patterns of the commands all vary
    patterns = np.array([[1, 1, 1, 1], [-1, -1, 1, 1], [-1, 1, 1, -1], [-1, 1, -1, 1]], dtype=float)
    assert (np.std(mc.values @ patterns.T, axis=0) > 0.005).all()
    assert truth["values"]["params"]["kf"] == pytest.approx(1.12)
    assert truth["values"]["action_delay_physics_steps"] == 4
    sig = motor_excitation("chirp", 100, 48.0, np.random.default_rng(0), 0.05)
    assert sig.shape == (100, 4) and np.abs(sig).max() <= 0.05 * 1.9
    with pytest.raises(Sim2RealError, match="unknown excitation"):
        motor_excitation("sweep", 10, 48.0, np.random.default_rng(0), 0.05)


def test_px4_bag_round_trip_matches_the_deploy_bridge(noisy_flight, tmp_path: Path) -> None:
    """What ``Px4MotorsAdapter`` publishes (recorded with ros2 bag) reads back as the commands sent."""
    from rosbags.rosbag2 import Reader, StoragePlugin, Writer

    from sim2real.ros2.adapters import LowLevelCommand, Px4MotorsAdapter
    from sim2real.ros2.drone import PX4_QUAD_X_ORDER
    from sim2real.sysid.quad_bag import _store

    log, _ = noisy_flight
    bag = write_quad_bag(tmp_path / "px4", log, ROBOT, storage="mcap", compression="message")
    with Reader(bag) as reader:
        types = {c.topic: c.msgtype for c in reader.connections}
    assert types == {"/cf231/odom": "nav_msgs/msg/Odometry", "/cf231/imu": "sensor_msgs/msg/Imu",
                     "/fmu/in/actuator_motors": ACTUATOR_MOTORS}
    back = read_quad_bag(bag, ROBOT)
    assert back.meta["motor_stream"] == "px4_actuator_motors"
    np.testing.assert_allclose(back.motor_command.values, log.motor_command.values, atol=1e-6)  # float32
    np.testing.assert_allclose(back.odometry.position, log.odometry.position)
    np.testing.assert_allclose(back.odometry.linear_velocity, log.odometry.linear_velocity)
    np.testing.assert_allclose(back.imu.linear_acceleration, log.imu.linear_acceleration)

    # the bridge's own adapter, recorded: its dicts become ActuatorMotors messages in a bag
    sent: list[dict] = []

    class _Transport:
        def advertise(self, topic: str, type_name: str):
            return sent.append if type_name == ACTUATOR_MOTORS else (lambda msg: None)

    adapter = Px4MotorsAdapter(_Transport(), "/fmu/in/actuator_motors", "/fmu/in/offboard_control_mode",
                               PX4_QUAD_X_ORDER)
    fracs = log.motor_command.values[:40]
    t0 = log.t0_ns
    for k, f in enumerate(fracs):
        adapter.send(LowLevelCommand(motors=f), t0 + int(log.motor_command.t[k] * 1e9))
    store = _store()
    motors = store.types[ACTUATOR_MOTORS]
    odo_bag = write_quad_bag(tmp_path / "odo", log, ROBOT, storage="sqlite3")
    with Reader(odo_bag) as reader:
        odo = [(c, t, d) for c, t, d in reader.messages() if c.topic == "/cf231/odom"][:45]
    with Writer(tmp_path / "bridge", version=8, storage_plugin=StoragePlugin.SQLITE3) as w:
        c_odo = w.add_connection("/cf231/odom", "nav_msgs/msg/Odometry", typestore=store)
        c_mot = w.add_connection("/fmu/in/actuator_motors", ACTUATOR_MOTORS, typestore=store)
        rows = [(t, c_odo, d) for _, t, d in odo]
        for k, d in enumerate(sent):
            msg = motors(timestamp=d["timestamp"], timestamp_sample=d["timestamp_sample"],
                         reversible_flags=d["reversible_flags"], control=np.asarray(d["control"], dtype=np.float32))
            rows.append((t0 + int(log.motor_command.t[k] * 1e9) + 1000, c_mot, bytes(store.serialize_cdr(msg, ACTUATOR_MOTORS))))
        for t, c, d in sorted(rows, key=lambda r: r[0]):
            w.write(c, t, d)
    bridge = read_quad_bag(tmp_path / "bridge", ROBOT)
    np.testing.assert_allclose(bridge.motor_command.values, fracs, atol=1e-6)


def test_array_and_csv_logs_read_back(noisy_flight, tmp_path: Path) -> None:
    from sim2real.sysid.csvlog import read_csv

    log, _ = noisy_flight
    bag = write_quad_bag(tmp_path / "arr", log, ROBOT, storage="sqlite3", motor_type="array")
    back = read_quad_bag(bag, ROBOT)
    assert back.meta["motor_stream"] == "motor_command" and back.motor_command.topic == "/motor_commands"
    np.testing.assert_array_equal(back.motor_command.values, log.motor_command.values)
    csv_log = read_csv(write_quad_csv(tmp_path / "f.csv", log), ROBOT)
    np.testing.assert_allclose(csv_log.odometry.orientation, log.odometry.orientation)
    np.testing.assert_allclose(csv_log.motor_command.values, log.motor_command.values)


def test_replay_is_exact_at_the_true_parameters(clean_flight) -> None:
    """Rotor speeds reconstructed from the command history (motor lag + delay) make the replay exact."""
    log, _ = clean_flight
    segments, gaps = align_quad(log, ROBOT.control.rate_hz)
    assert len(segments) == 1 and not gaps
    windows = make_quad_windows(segments, 16, max_windows=6)
    specs = parse_quad_params("kf,inertia,km,motor_tau,delay", ROBOT)
    replay = QuadWindowReplay(ROBOT, windows, specs, quad_signal_scales(segments, 16))
    try:
        truth = [HIDDEN[s.name] for s in specs]
        assert replay.cost(truth) < 1e-8  # the motor-lag reconstruction starts 12 commands back
        for i, s in enumerate(specs):
            off = list(truth)
            off[i] = truth[i] + 1.0 if s.integer else truth[i] * 1.05
            assert replay.cost(off) > 1e-5, s.name
    finally:
        replay.close()


def test_calibration_recovers_parameters_from_a_noisy_bag(noisy_flight, tmp_path: Path) -> None:
    log, truth = noisy_flight
    log = read_quad_bag(write_quad_bag(tmp_path / "b", log, ROBOT), ROBOT)
    specs = parse_quad_params("kf,inertia,delay", ROBOT)
    config = CalibrationConfig(horizon=20, max_windows=10, budget=90, lm_iterations=4)
    res = calibrate(log, ROBOT, specs, config, state_path=tmp_path / "s.pkl", progress=False)  # dispatch hook
    est = res.by_name()
    assert est["kf"].estimate == pytest.approx(HIDDEN["kf"], rel=0.03)
    assert est["inertia"].estimate == pytest.approx(HIDDEN["inertia"], rel=0.08)
    assert abs(est["delay"].estimate - HIDDEN["delay"]) <= 1
    assert res.cost_final < 0.2 * res.cost_initial and res.evaluations <= 90 + 12
    assert est["kf"].identifiable and est["kf"].ci_low <= est["kf"].estimate <= est["kf"].ci_high
    assert est["kf"].absolute["kf"] == pytest.approx(est["kf"].estimate * ROBOT.model_params["kf"])
    paths = write_quad_outputs(res, ROBOT, tmp_path / "cal.yaml", prior=load_profile("quadrotor", robot=ROBOT),
                               truth=truth)
    prof = load_profile(str(paths["profile"]), robot=ROBOT)
    kf_entry = prof.to_dict()["params"]["thrust_coefficient"]
    assert kf_entry["param"] == "model_param" and kf_entry["targets"] == ["kf"]
    assert kf_entry["low"] <= est["kf"].estimate <= kf_entry["high"] and kf_entry["high"] - kf_entry["low"] < 0.4
    assert "wind_gust" in prof.entries and "body_mass" in prof.entries  # uncalibrated prior entries kept
    data = json.loads(paths["json"].read_text())
    assert data["truth"]["values"]["params"]["kf"] == pytest.approx(HIDDEN["kf"])
    assert paths["png"].stat().st_size > 10_000
    # `sim2real train` accepts it: a quadrotor env runs with the narrowed profile
    from sim2real.envs.quadrotor import QuadrotorEnv

    env = QuadrotorEnv(profile=str(paths["profile"]))
    try:
        env.reset(seed=0)
        env.step(env.action_space.sample())
    finally:
        env.close()


def test_narrowed_profile_keeps_unidentified_ranges(noisy_flight, tmp_path: Path) -> None:
    from sim2real.sysid.calibrate import CalibrationResult, ParamEstimate

    def est(name: str, value: float, ident: bool) -> ParamEstimate:
        (s,) = parse_quad_params(name, ROBOT)
        return ParamEstimate(name, s.kind, list(s.targets), s.operation, s.unit, value, value - 0.01, value + 0.01,
                             0.005, ident, s.low, s.high)

    res = CalibrationResult("quadrotor", "x", [est("drag", 1.1, False), est("motor_tau", 1.2, True)], 1.0, 0.1, 10,
                            1.0, 1.0, 4, 20, [])
    prof = narrowed_quad_profile(res, ROBOT)
    assert (prof["params"]["rotor_drag"]["low"], prof["params"]["rotor_drag"]["high"]) == (0.1, 10.0)
    assert prof["params"]["motor_lag"]["low"] == pytest.approx(1.2 - 0.024)
    load_profile(prof, robot=ROBOT)


def test_bad_input_names_file_and_topic(noisy_flight, tmp_path: Path) -> None:
    log, _ = noisy_flight
    bag = write_quad_bag(tmp_path / "odom", log, ROBOT, topics={"odometry": "/other/odom"})
    with pytest.raises(LogError, match=r"odom: topic /cf231/odom \(nav_msgs/msg/Odometry\) not in the bag"):
        read_quad_bag(bag, ROBOT)
    assert len(read_quad_bag(bag, ROBOT, topics={"odometry": "/other/odom"}).odometry) == len(log.odometry)
    nomotor = write_quad_bag(tmp_path / "nomotor", log, ROBOT, topics={"px4_actuator_motors": "/elsewhere"})
    with pytest.raises(LogError, match="/fmu/in/actuator_motors .*or /motor_commands .*not in the bag"):
        read_quad_bag(nomotor, ROBOT)
    good = write_quad_bag(tmp_path / "trunc", log, ROBOT, storage="mcap")
    mcap = next(good.glob("*.mcap"))
    mcap.write_bytes(mcap.read_bytes()[: mcap.stat().st_size // 2])
    with pytest.raises(LogError, match=r"trunc.*(corrupt or truncated|topic)"):
        read_quad_bag(good, ROBOT)
    with pytest.raises(LogError, match="no such bag"):
        read_quad_bag(tmp_path / "missing", ROBOT)
    with pytest.raises(Sim2RealError, match="needs a quadrotor"):
        record_quadrotor(load_robot("kuka_iiwa"), NOMINAL, 0, "prbs", 1.0)


def test_cli_record_and_calibrate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sim2real.cli.main import main

    out = tmp_path / "flight"
    assert main(["record", "--robot", "quadrotor", "--profile", "quadrotor", "--seed", "2", "--excitation", "prbs",
                 "--duration", "4", "--out", str(out), "--storage", "sqlite3", "--motor-type", "array",
                 "--pos-noise", "0.001"]) == 0
    assert (out / "metadata.yaml").is_file() and (tmp_path / "flight.truth.yaml").is_file()
    cal = tmp_path / "cal.yaml"
    assert main(["calibrate", "--log", str(out), "--robot", "quadrotor", "--params", "kf,delay", "--out", str(cal),
                 "--budget", "24", "--horizon", "10", "--max-windows", "4", "--quiet", "--no-plot"]) == 0
    text = capsys.readouterr().out
    assert "kf" in text and "simulator evaluations" in text
    assert cal.is_file() and cal.with_suffix(".json").is_file()
    assert main(["calibrate", "--log", str(out), "--robot", "quadrotor", "--params", "kf,friction",
                 "--out", str(cal), "--quiet"]) != 0
    assert "unknown parameter 'friction' for a quadrotor" in capsys.readouterr().err
    assert main(["calibrate", "--log", str(out), "--robot", "quadrotor", "--params", "kf", "--out", str(cal),
                 "--odometry-topic", "/nope", "--quiet"]) != 0
    err = capsys.readouterr().err
    assert "topic /nope" in err and str(out) in err and len(err.strip().splitlines()) == 1


def test_actuator_motors_definition_matches_the_bridge() -> None:
    pytest.importorskip("cyclonedds")
    from sim2real.ros2.dds_types import EXTRA_MSG_DEFINITIONS

    assert EXTRA_MSG_DEFINITIONS[ACTUATOR_MOTORS] == ACTUATOR_MOTORS_MSG


def test_resume_continues_from_the_state_file(clean_flight, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sim2real.sysid import quad_calibrate
    from sim2real.sysid.quad_calibrate import calibrate_quadrotor

    log, _ = clean_flight
    specs = parse_quad_params("kf,delay", ROBOT)
    state = tmp_path / "s.pkl"
    config = CalibrationConfig(horizon=10, max_windows=4, budget=40, lm_iterations=2)
    first = calibrate_quadrotor(log, ROBOT, specs, config, state_path=state, progress=False)
    assert state.is_file()

    def no_cma(*args, **kwargs):
        raise AssertionError("CMA-ES ran again although the state says it finished")

    monkeypatch.setattr(quad_calibrate, "_run_cma", no_cma)
    again = calibrate_quadrotor(log, ROBOT, specs, config, state_path=state, resume=True, progress=False)
    assert again.by_name()["kf"].estimate == pytest.approx(first.by_name()["kf"].estimate, rel=1e-3)
    assert again.history == first.history and again.evaluations == first.evaluations
    with pytest.raises(Sim2RealError, match="different log, parameter set or config"):
        calibrate_quadrotor(log, ROBOT, parse_quad_params("km,delay", ROBOT), config, state_path=state, resume=True,
                            progress=False)


def test_gaps_split_the_log_and_bad_fractions_are_rejected(clean_flight, tmp_path: Path) -> None:
    import dataclasses

    log, _ = clean_flight
    o = log.odometry
    keep = (o.t < 3.0) | (o.t > 4.0)  # the odometry drops out for a second
    holed = dataclasses.replace(log, odometry=dataclasses.replace(
        o, t=o.t[keep], position=o.position[keep], orientation=o.orientation[keep],
        linear_velocity=o.linear_velocity[keep], angular_velocity=o.angular_velocity[keep]))
    segments, gaps = align_quad(holed, ROBOT.control.rate_hz)
    assert len(segments) == 2 and len(gaps) == 1 and gaps[0][0] < 3.0 and gaps[0][1] > 4.0
    assert segments[0].t[-1] <= gaps[0][0] and segments[1].t[0] >= gaps[0][1]
    bad = dataclasses.replace(log, motor_command=dataclasses.replace(log.motor_command,
                                                                     values=log.motor_command.values * 3.0))
    bag = write_quad_bag(tmp_path / "bad", bad, ROBOT, motor_type="array")
    with pytest.raises(LogError, match=r"bad: topic /motor_commands: message \d+ has thrust fractions .* outside"):
        read_quad_bag(bag, ROBOT)
