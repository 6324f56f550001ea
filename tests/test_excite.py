"""``sim2real excite`` against the mock arm (a separate process on the DDS transport).

The mock (``python -m sim2real.ros2.mock_robot``) publishes ``JointState`` with shuffled names
plus an extra joint and tracks the position commands it receives. Each test uses its own
random DDS domain; every wait is bounded.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("cyclonedds")
pytest.importorskip("rosbags")

from sim2real.cli.main import main  # noqa: E402
from sim2real.robots import load_robot  # noqa: E402
from sim2real.sysid.bagio import read_bag  # noqa: E402
from sim2real.sysid.excitation import excitation  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
KUKA = load_robot("kuka_iiwa")
LOWER = np.array([j.lower for j in KUKA.joints])
UPPER = np.array([j.upper for j in KUKA.joints])
VMAX = np.array([j.max_velocity for j in KUKA.joints])
STATE_RATE = 50.0
RATE = KUKA.control.rate_hz  # 20 Hz: what calibrate replays at
SOFT_START = 0.5


def domain_id() -> int:
    return random.Random(os.getpid() * 1_000_003 + time.time_ns()).randint(100, 200)


def params_file(tmp: Path) -> Path:
    path = tmp / "excite.yaml"
    path.write_text(f"sim2real_excite:\n  ros__parameters:\n    safety:\n      soft_start_s: {SOFT_START}\n"
                    "      watchdog_periods: 4\n")
    return path


def start_mock(domain: int, tmp: Path, duration: float, *extra: str) -> tuple[subprocess.Popen, Path]:
    out = tmp / f"mock_{domain}.json"
    cmd = [sys.executable, "-m", "sim2real.ros2.mock_robot", "--robot", "kuka_iiwa", "--domain-id", str(domain),
           "--rate", str(STATE_RATE), "--duration", str(duration), "--out", str(out), *extra]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True), out


def finish_mock(proc: subprocess.Popen, out: Path) -> dict[str, Any]:
    try:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    return json.loads(out.read_text())


def excite(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, dict[str, Any], str]:
    """Run ``sim2real excite`` in this process; returns exit code, JSON summary, stderr."""
    capsys.readouterr()
    rc = main(["excite", "--robot", "kuka_iiwa", "--transport", "dds", *args])
    out, err = capsys.readouterr()
    return rc, (json.loads(out) if out.strip() else {}), err


def assert_safe(cmds: np.ndarray, rate: float) -> None:
    """Inside the joint limits, and no step between consecutive commands above max_velocity / rate."""
    assert np.all(np.isfinite(cmds))
    assert np.all(cmds >= LOWER - 1e-12) and np.all(cmds <= UPPER + 1e-12)
    assert np.all(np.abs(np.diff(cmds, axis=0)) <= VMAX / rate + 1e-9)


@pytest.fixture(scope="module")
def multisine_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One 3 s multisine experiment on the mock arm (shared by the checks below)."""
    tmp = tmp_path_factory.mktemp("excite")
    domain = domain_id()
    proc, out = start_mock(domain, tmp, SOFT_START + 3.0 + 2.0)  # soft start, excitation, hold + slack
    bag = tmp / "bag"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = main(["excite", "--robot", "kuka_iiwa", "--transport", "dds", "--domain-id", str(domain),
                   "--duration", "3", "--seed", "4", "--out", str(bag), "--params", str(params_file(tmp))])
    record = finish_mock(proc, out)
    return {"rc": rc, "summary": json.loads(buf.getvalue()), "bag": bag, "mock": record, "tmp": tmp}


def test_multisine_run_completes_and_writes_a_readable_bag(multisine_run: dict[str, Any]) -> None:
    summary, bag = multisine_run["summary"], multisine_run["bag"]
    assert multisine_run["rc"] == 0 and summary["completed"] and summary["stop_reason"] == "completed"
    assert summary["targets_sent"] == summary["targets"] == int(3 * RATE)
    assert (bag / "metadata.yaml").is_file() and list(bag.glob("*.mcap"))
    assert not [p for p in bag.parent.iterdir() if p.name.startswith(".bag")]  # no temp dir left behind
    log = read_bag(bag, KUKA, require=("joint_states", "command"))
    assert len(log.command) == summary["samples"]["commands"]
    assert len(log.joint_states) == summary["samples"]["joint_states"] > 2.5 * STATE_RATE
    assert log.command.topic == "/forward_position_controller/commands"
    # the excitation itself was sent unchanged (a multisine within velocity limits needs no limiting) ...
    targets = excitation("multisine", KUKA, 3.0, RATE, np.random.default_rng(4), amplitude=0.3)
    cmds = log.command.values
    first = int(np.argmin(np.abs(cmds - targets[0]).max(axis=1)))
    np.testing.assert_allclose(cmds[first:first + len(targets)], targets, atol=1e-12)
    assert summary["safety"]["clip"] == 0 and summary["safety"]["rate_limit"] == 0
    # ... and the measured positions follow it: at the best delay (transport + the mock's 20 ms
    # tracking lag) the error is a small fraction of the swing
    t_cmd = log.command.t[first:first + len(targets)]
    js = log.joint_states
    for j in range(KUKA.n_joints):
        rms = min(np.sqrt(np.mean((np.interp(t_cmd + lag, js.t, js.position[:, j]) - targets[:, j]) ** 2))
                  for lag in np.arange(0.0, 0.15, 0.005))
        assert np.std(targets[:, j]) > 0.05  # the joint really moved
        assert rms < 0.25 * np.std(targets[:, j]), KUKA.joints[j].name
    # hold at the end: the last commands repeat one pose, the measured one
    held = cmds[first + len(targets):]
    assert len(held) >= RATE * 1.0 - 1 and np.all(held[-1] == held[-5:])
    np.testing.assert_allclose(held[-1], js.position[-1], atol=0.05)


def test_commands_respect_limits_and_reach_the_robot(multisine_run: dict[str, Any]) -> None:
    mock = multisine_run["mock"]
    received = np.array([c for _, c in mock["received"]], dtype=float)
    log = read_bag(multisine_run["bag"], KUKA, require=("joint_states", "command"))
    assert len(received) >= 0.95 * len(log.command)
    assert_safe(received, RATE)
    assert_safe(log.command.values, RATE)
    # the soft start begins at the measured pose (the mock starts 0.3 rad away from home)
    q0 = log.joint_states.position[0]
    assert np.abs(log.command.values[0] - q0).max() <= VMAX.max() / RATE + 1e-9


def test_calibrate_accepts_the_bag(multisine_run: dict[str, Any]) -> None:
    out = multisine_run["tmp"] / "cal" / "calibrated.yaml"
    rc = main(["calibrate", "--log", str(multisine_run["bag"]), "--robot", "kuka_iiwa", "--params", "damping",
               "--budget", "8", "--out", str(out), "--no-plot", "--quiet"])
    assert rc == 0
    report = json.loads(out.with_suffix(".json").read_text())
    assert out.is_file() and report


def test_estop_stops_the_excitation_and_keeps_the_recording(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """PRBS steps are rate-limited; an e-stop mid-run holds, the bag (sqlite3, JointTrajectory) is still written."""
    from sim2real.ros2.transport_dds import DdsTransport

    domain = domain_id()
    proc, out = start_mock(domain, tmp_path, 4.5, "--output", "joint_trajectory")
    operator = DdsTransport("operator", domain_id=domain)
    seen: list[float] = []
    operator.subscribe("/forward_position_controller/joint_trajectory", "trajectory_msgs/msg/JointTrajectory",
                       lambda msg: seen.append(time.monotonic()))
    estop = operator.advertise("/estop", "std_msgs/msg/Bool")
    pressed: list[float] = []

    def press() -> None:
        deadline = time.monotonic() + 30
        while len(seen) < (SOFT_START + 1.5) * RATE and time.monotonic() < deadline:
            time.sleep(0.01)
        pressed.append(time.monotonic())
        estop({"data": True})
        time.sleep(0.2)
        estop({"data": False})  # releasing does not resume

    presser = threading.Thread(target=press, daemon=True)
    presser.start()
    bag = tmp_path / "bag"
    try:
        rc, summary, _ = excite(capsys, "--domain-id", str(domain), "--excitation", "prbs", "--duration", "8",
                             "--out", str(bag), "--params", str(params_file(tmp_path)), "--output", "joint_trajectory",
                             "--controller", "forward_position_controller", "--storage", "sqlite3")
    finally:
        presser.join(timeout=30)
        operator.close()
    record = finish_mock(proc, out)
    assert pressed and rc == 1
    assert summary["stop_reason"] == "estop" and summary["safety"]["estop"] == 1
    assert summary["targets_sent"] < summary["targets"]
    assert summary["safety"]["rate_limit"] > 0 and sum(summary["rate_limited"].values()) > 0
    # the bag holds the topic really commanded (calibrate --command-topic reads a non-default one)
    log = read_bag(bag, KUKA, require=("joint_states", "command"),
                   topics={"command": "/forward_position_controller/joint_trajectory"})
    assert log.command.topic == summary["topics"]["command"] == "/forward_position_controller/joint_trajectory"
    assert list(bag.glob("*.db3")) and len(log.command) == summary["samples"]["commands"]
    times = np.array([t for t, _ in record["received"]])
    cmds = np.array([c for _, c in record["received"]], dtype=float)
    assert_safe(cmds, RATE)
    # after the e-stop: no more excitation, only the hold (converging to one pose), then silence
    after = cmds[times > pressed[0] + 0.1]
    assert 0 < len(after) <= (1.0 + 0.5) * RATE
    assert np.all(after[-1] == after[-5:])
    assert record["final_q"] == pytest.approx(list(after[-1]), abs=0.02)


@pytest.mark.slow
def test_watchdog_trip_stops_and_writes(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    domain = domain_id()
    proc, out = start_mock(domain, tmp_path, 4.0, "--silence-at", "2.0")
    bag = tmp_path / "bag"
    rc, summary, _ = excite(capsys, "--domain-id", str(domain), "--duration", "10", "--out", str(bag),
                         "--params", str(params_file(tmp_path)))
    finish_mock(proc, out)
    assert rc == 1 and summary["stop_reason"] == "stale_observation"
    assert summary["safety"]["stale_observation"] == 1 and summary["safety"]["held_ticks"] > 0
    log = read_bag(bag, KUKA, require=("joint_states", "command"))
    assert log.joint_states.t[-1] < log.command.t[-1]  # commands (the hold) went on after the last state


@pytest.mark.parametrize("args, message", [
    (["--robot", "no_such_robot"], "unknown robot"),
    (["--robot", "quadrotor"], "excite drives arms"),
    (["--duration", "0"], "--duration must be > 0"),
    (["--duration", "-2"], "--duration must be > 0"),
    (["--amplitude", "1.2"], "does not fit the joint limits"),
    (["--amplitude", "0"], "--amplitude must be > 0"),
    (["--rate", "0"], "--rate must be > 0"),
    (["--wait-state", "0"], "--wait-state must be > 0"),
    (["--params", "PARAMS_BAD"], "unknown parameter"),
    (["--out", "EXISTING"], "already exists"),
])
def test_bad_input_exits_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture, args: list[str],
                                         message: str) -> None:
    existing = tmp_path / "old_bag"
    existing.mkdir()
    (existing / "metadata.yaml").write_text("keep me\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text("sim2real_excite:\n  ros__parameters:\n    safty: {soft_start_s: 1.0}\n")
    args = [{"PARAMS_BAD": str(bad), "EXISTING": str(existing)}.get(a, a) for a in args]
    base = {"--robot": "kuka_iiwa", "--out": str(tmp_path / "new_bag"), "--domain-id": "231", "--wait-state": "0.5"}
    for i in range(0, len(args), 2):
        base[args[i]] = args[i + 1]
    before = sorted(p.name for p in tmp_path.iterdir())
    rc = main(["excite", "--transport", "dds", *[x for kv in base.items() for x in kv]])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1 and err.startswith("sim2real excite: error:") and message in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert (existing / "metadata.yaml").read_text() == "keep me\n"


def test_no_joint_states_is_an_error_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rc, _, err = excite(capsys, "--domain-id", str(domain_id()), "--duration", "1", "--wait-state", "0.5",
                        "--out", str(tmp_path / "bag"))
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "no JointState" in err and "nothing was sent" in err
    assert list(tmp_path.iterdir()) == []


def test_launch_file_starts_excite() -> None:
    """record_sysid.launch.py's command line (built without launch installed) parses as `sim2real excite`."""
    import ast

    from sim2real.cli.main import build_parser

    path = ROOT / "launch" / "record_sysid.launch.py"
    tree = ast.parse(path.read_text())
    keep = [n for n in tree.body if isinstance(n, (ast.Assign, ast.Import))
            or (isinstance(n, ast.FunctionDef) and n.name in ("excite_command", "bag_record_command"))]
    namespace: dict = {}
    exec(compile(ast.Module(body=keep, type_ignores=[]), str(path), "exec"), namespace)
    values = {"robot": "kuka_iiwa", "bag": "b", "excitation": "chirp", "duration": "30.0", "amplitude": "0.2",
              "seed": "3", "storage": "sqlite3", "transport": "auto", "output": "", "controller": "my_ctrl",
              "params_file": "p.yaml", "rate": "0.0", "force": "true"}
    cmd = namespace["excite_command"](values, python="python3")
    assert cmd[:4] == ["python3", "-m", "sim2real", "excite"]
    args = build_parser().parse_args(cmd[3:])
    assert (args.robot, args.out, args.excitation, args.duration, args.amplitude, args.seed) == \
        ("kuka_iiwa", "b", "chirp", 30.0, 0.2, 3)
    assert (args.controller, args.params, args.rate, args.force, args.output) == ("my_ctrl", "p.yaml", None, True, None)
    assert namespace["bag_record_command"]("b_extra", "mcap", ["/tf"], True) == \
        ["ros2", "bag", "record", "-o", "b_extra", "-s", "mcap", "/tf", "--use-sim-time"]
