"""Hardware-log I/O: rosbag2 (MCAP, sqlite3, compressed) round trips, joint reordering, bad input,
CSV, alignment/resampling/gap detection, excitation signals."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from sim2real.errors import LogError
from sim2real.robots import load_robot
from sim2real.sysid.align import align, find_gaps
from sim2real.sysid.bagio import read_bag, write_bag
from sim2real.sysid.csvlog import read_csv, read_log, write_csv
from sim2real.sysid.excitation import EXCITATIONS, excitation
from sim2real.sysid.logs import Commands, HardwareLog, Imu, JointStates, Odometry

ROBOT = load_robot("kuka_iiwa")
T0 = 1_700_000_000_123_456_789


def make_log(n: int = 60, rate: float = 20.0, seed: int = 0) -> HardwareLog:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / rate
    q = rng.normal(size=(n, 7))
    return HardwareLog("mem", ROBOT.joint_names, t0_ns=T0,
                       joint_states=JointStates(t, q, 2 * q, np.full((n, 7), np.nan)),
                       command=Commands(t, q + 0.1))


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
@pytest.mark.parametrize("compression", ["none", "file", "message"])
def test_bag_round_trip_reorders_joints(tmp_path: Path, storage: str, compression: str) -> None:
    log = make_log()
    shuffled = [ROBOT.ros2.joint_names[i] for i in (3, 0, 6, 1, 5, 2, 4)]
    bag = write_bag(tmp_path / "bag", log, ROBOT, storage=storage, compression=compression, joint_order=shuffled)
    back = read_bag(bag, ROBOT, require=("joint_states", "command"))
    assert back.t0_ns == T0
    np.testing.assert_allclose(back.joint_states.t, log.joint_states.t, atol=1e-9)
    np.testing.assert_array_equal(back.joint_states.position, log.joint_states.position)
    np.testing.assert_array_equal(back.joint_states.velocity, log.joint_states.velocity)
    assert np.isnan(back.joint_states.effort).all()
    np.testing.assert_array_equal(back.command.values, log.command.values)


def test_trajectory_commands_reordered(tmp_path: Path) -> None:
    log = make_log()
    shuffled = list(reversed(ROBOT.ros2.joint_names))
    bag = write_bag(tmp_path / "bag", log, ROBOT, joint_order=shuffled, command_type="trajectory")
    back = read_bag(bag, ROBOT, require=("joint_states", "command"))
    assert back.command.topic == ROBOT.ros2.topics["trajectory"]
    np.testing.assert_array_equal(back.command.values, log.command.values)


def test_reads_bare_storage_file(tmp_path: Path) -> None:
    bag = write_bag(tmp_path / "bag", make_log(), ROBOT, storage="sqlite3")
    (db,) = bag.glob("*.db3")
    back = read_bag(db, ROBOT)
    assert len(back.joint_states) == 60


def test_quadrotor_streams_round_trip(tmp_path: Path) -> None:
    n, rng = 40, np.random.default_rng(1)
    t = np.arange(n) / 50.0
    quat = rng.normal(size=(n, 4))
    quat /= np.linalg.norm(quat, axis=1, keepdims=True)
    odo = Odometry(t, rng.normal(size=(n, 3)), quat, rng.normal(size=(n, 3)), rng.normal(size=(n, 3)))
    imu = Imu(t + 0.001, quat, rng.normal(size=(n, 3)), rng.normal(size=(n, 3)))
    mot = Commands(t, rng.uniform(-1, 1, size=(n, 4)), kind="motor")
    log = HardwareLog("mem", ROBOT.joint_names, t0_ns=T0, odometry=odo, imu=imu, motor_command=mot)
    bag = write_bag(tmp_path / "q", log, ROBOT)
    back = read_bag(bag, ROBOT, require=("odometry", "imu", "motor_command"))
    np.testing.assert_array_equal(back.odometry.orientation, quat)
    np.testing.assert_array_equal(back.odometry.angular_velocity, odo.angular_velocity)
    np.testing.assert_array_equal(back.imu.linear_acceleration, imu.linear_acceleration)
    np.testing.assert_allclose(back.imu.t, imu.t, atol=1e-9)
    np.testing.assert_array_equal(back.motor_command.values, mot.values)


def test_missing_bag(tmp_path: Path) -> None:
    with pytest.raises(LogError, match="no such bag"):
        read_bag(tmp_path / "nope", ROBOT)


def test_missing_topic_names_topic(tmp_path: Path) -> None:
    log = make_log()
    log.command = None
    bag = write_bag(tmp_path / "bag", log, ROBOT)
    with pytest.raises(LogError, match=r"bag.*/forward_position_controller/commands.*not in the bag"):
        read_bag(bag, ROBOT, require=("joint_states", "command"))


def test_empty_topic(tmp_path: Path) -> None:
    log = make_log()
    log.joint_states = JointStates(np.zeros(0), np.zeros((0, 7)), np.zeros((0, 7)), np.zeros((0, 7)))
    log.command = None
    log.odometry = Odometry(np.zeros(1), np.zeros((1, 3)), np.array([[0, 0, 0, 1.0]]), np.zeros((1, 3)),
                            np.zeros((1, 3)))
    bag = write_bag(tmp_path / "bag", log, ROBOT)
    with pytest.raises(LogError, match="/joint_states"):
        read_bag(bag, ROBOT)


def test_unknown_joint_names(tmp_path: Path) -> None:
    other = load_robot("franka_panda")
    bag = write_bag(tmp_path / "bag", make_log(), other)
    with pytest.raises(LogError, match=r"/joint_states: unknown joint names \['fr3_joint1'"):
        read_bag(bag, ROBOT)


def test_non_monotonic_stamps(tmp_path: Path) -> None:
    log = make_log()
    log.joint_states.t[10] = log.joint_states.t[8]
    bag = write_bag(tmp_path / "bag", log, ROBOT)
    with pytest.raises(LogError, match="/joint_states: timestamps are not strictly increasing"):
        read_bag(bag, ROBOT)


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_truncated_bag(tmp_path: Path, storage: str) -> None:
    bag = write_bag(tmp_path / "bag", make_log(200), ROBOT, storage=storage)
    (data,) = [f for f in bag.iterdir() if f.suffix in (".mcap", ".db3")]
    raw = data.read_bytes()
    data.write_bytes(raw[: len(raw) // 3])
    with pytest.raises(LogError, match=r"bag.*corrupt or truncated"):
        read_bag(bag, ROBOT)


def test_corrupt_metadata(tmp_path: Path) -> None:
    bag = write_bag(tmp_path / "bag", make_log(), ROBOT)
    (bag / "metadata.yaml").write_text("rosbag2_bagfile_information: [unclosed\n")
    with pytest.raises(LogError, match="cannot open"):
        read_bag(bag, ROBOT)


def test_sqlite_garbage(tmp_path: Path) -> None:
    bag = write_bag(tmp_path / "bag", make_log(), ROBOT, storage="sqlite3")
    (db,) = bag.glob("*.db3")
    with sqlite3.connect(db) as con:
        con.execute("DROP TABLE messages")
    with pytest.raises(LogError, match="corrupt or truncated"):
        read_bag(bag, ROBOT)


def test_write_refuses_existing(tmp_path: Path) -> None:
    write_bag(tmp_path / "bag", make_log(), ROBOT)
    with pytest.raises(LogError, match="already exists"):
        write_bag(tmp_path / "bag", make_log(), ROBOT)
    write_bag(tmp_path / "bag", make_log(seed=3), ROBOT, overwrite=True)
    assert np.allclose(read_bag(tmp_path / "bag", ROBOT).joint_states.position, make_log(seed=3).joint_states.position)


def test_csv_round_trip_and_errors(tmp_path: Path) -> None:
    log = make_log()
    path = write_csv(tmp_path / "log.csv", log, ROBOT)
    back = read_log(path, ROBOT)
    np.testing.assert_allclose(back.joint_states.position, log.joint_states.position)
    np.testing.assert_allclose(back.joint_states.velocity, log.joint_states.velocity)
    np.testing.assert_allclose(back.command.values, log.command.values)
    header = path.read_text().splitlines()[0]
    body = "\n".join(path.read_text().splitlines()[1:])
    (tmp_path / "bad.csv").write_text(header.replace("q_iiwa_joint_3", "q_elbow") + "\n" + body + "\n")
    with pytest.raises(LogError, match="bad.csv: column q_iiwa_joint_3: missing"):
        read_csv(tmp_path / "bad.csv", ROBOT)
    lines = path.read_text().splitlines()
    lines[5], lines[6] = lines[6], lines[5]
    (tmp_path / "swap.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(LogError, match="swap.csv: topic columns q_\\*: timestamps are not strictly increasing"):
        read_csv(tmp_path / "swap.csv", ROBOT)
    (tmp_path / "nan.csv").write_text(header + "\n" + "0.0," + "x," * (len(header.split(",")) - 2) + "1\n")
    with pytest.raises(LogError, match="not a number: 'x'"):
        read_csv(tmp_path / "nan.csv", ROBOT)


def test_align_resamples_and_holds_commands() -> None:
    # states at 100 Hz with jitter-free stamps, commands at 20 Hz with a small publish lag
    ts = np.arange(0, 2.0, 0.01)
    q = np.stack([np.sin(ts + j) for j in range(7)], axis=1)
    tc = np.arange(0, 2.0, 0.05) + 0.003
    cmd = np.arange(tc.size)[:, None] * np.ones((1, 7))
    log = HardwareLog("mem", ROBOT.joint_names, joint_states=JointStates(ts, q, np.full_like(q, np.nan), q * 0),
                      command=Commands(tc, cmd))
    segs, gaps = align(log, 20.0)
    assert gaps == [] and len(segs) == 1
    s = segs[0]
    np.testing.assert_allclose(np.diff(s.t), 0.05)
    np.testing.assert_allclose(s.q[:, 2], np.sin(s.t + 2), atol=1e-4)  # linear interpolation
    np.testing.assert_allclose(s.qd[5:-5, 0], np.cos(s.t[5:-5]), atol=1e-3)  # finite-difference velocity
    np.testing.assert_array_equal(s.cmd[:, 0], np.arange(len(s)))  # command k is in effect at grid point k


def test_align_splits_at_gaps() -> None:
    ts = np.concatenate([np.arange(0, 1.0, 0.05), np.arange(2.0, 3.0, 0.05)])
    q = np.zeros((ts.size, 7))
    log = HardwareLog("mem", ROBOT.joint_names, joint_states=JointStates(ts, q, q, q),
                      command=Commands(np.arange(0, 3.0, 0.05), np.zeros((60, 7))))
    segs, gaps = align(log, 20.0)
    assert len(gaps) == 1 and gaps[0][0] == pytest.approx(0.95) and gaps[0][1] == pytest.approx(2.0)
    assert len(segs) == 2 and segs[0].t[-1] < 1.0 and segs[1].t[0] >= 2.0
    assert find_gaps(np.array([0.0, 0.1, 0.5]), 0.2) == [(0.1, 0.5)]


def test_align_without_overlap_fails() -> None:
    q = np.zeros((20, 7))
    log = HardwareLog("f.bag", ROBOT.joint_names, joint_states=JointStates(np.arange(20) * 0.05, q, q, q),
                      command=Commands(np.arange(20) * 0.05 + 5.0, q))
    with pytest.raises(LogError, match="f.bag: topics .*no gap-free overlap"):
        align(log, 20.0)


@pytest.mark.parametrize("kind", EXCITATIONS)
def test_excitation_within_limits(kind: str) -> None:
    sig = excitation(kind, ROBOT, 8.0, 20.0, np.random.default_rng(0), amplitude=0.5)
    assert sig.shape == (160, 7)
    lower = np.array([j.lower for j in ROBOT.joints])
    upper = np.array([j.upper for j in ROBOT.joints])
    assert (sig >= lower).all() and (sig <= upper).all()
    assert (np.ptp(sig, axis=0) > 0.3).all()  # every joint is excited
    again = excitation(kind, ROBOT, 8.0, 20.0, np.random.default_rng(0), amplitude=0.5)
    np.testing.assert_array_equal(sig, again)


def test_multisine_respects_velocity_limits() -> None:
    sig = excitation("multisine", ROBOT, 20.0, 20.0, np.random.default_rng(1), amplitude=1.5)
    vmax = np.array([j.max_velocity for j in ROBOT.joints])
    speed = np.abs(np.diff(sig, axis=0)).max(axis=0) * 20.0
    assert (speed <= 0.9 * vmax + 1e-9).all()
    assert (speed > 0.5 * vmax).all()  # and uses most of the allowed speed
