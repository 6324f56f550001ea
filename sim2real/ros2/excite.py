"""Identification experiment on a live arm: excitation → safety layer → command topic, joint states → rosbag2.

:class:`ExcitationRun` sends precomputed joint-position targets (``(T, n)`` rad, robot.yaml
``joints`` order, from :func:`sim2real.sysid.excitation.excitation`) at a fixed rate through the
deployment node's :class:`~sim2real.ros2.safety.SafetyLayer` and output adapters, and records
every joint state it receives and every command it sends. Phases:

``waiting`` (no joint state yet) → ``soft_start`` (cosine interpolation from the measured pose to
the first target over ``safety.soft_start_s``) → ``gate`` (hold the first target until
max |q − target| ≤ ``safety.start_gate_tolerance``; abort after :data:`GATE_TIMEOUT_S`) →
``exciting`` (one target per tick) → ``hold`` (rate-limited move of the command to the last
measured pose, published for ``hold_s``) → ``done``.

A latched e-stop, a stale joint-state stream (watchdog), a failed start gate or a stop request
(Ctrl-C, SIGTERM) ends the excitation early and goes to ``hold``. Every command, soft start and
hold included, is clipped to the joint limits and rate-limited to ``max_velocity · period``.
Transport-agnostic (rclpy or DDS); imports neither the simulator nor torch.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sim2real.errors import Sim2RealError, TransportError
from sim2real.robots import RobotDescription
from sim2real.ros2.node import arm_command_adapter, safety_layer
from sim2real.ros2.observation import JointStateReader
from sim2real.ros2.safety import SoftStart, joint_position_limits
from sim2real.ros2.transport import Transport

LOG = logging.getLogger("sim2real.ros2")
EXCITE_NODE = "sim2real_excite"
GATE_TIMEOUT_S = 5.0  # time after soft start for the pose to reach the first target before aborting
#: why the excitation ended
STOP_REASONS = ("completed", "estop", "stale_observation", "start_gate", "interrupted")


@dataclass
class Recording:
    """What the run received and sent, joint columns in robot.yaml ``joints`` order.

    States: stamps ns (``header.stamp``, or the receive time when zero), positions rad,
    velocities rad/s and efforts N·m (NaN rows where the message had none).
    Commands: send time ns (transport clock) and the position command rad.
    """

    state_ns: list[int] = field(default_factory=list)
    position: list[np.ndarray] = field(default_factory=list)
    velocity: list[np.ndarray] = field(default_factory=list)
    effort: list[np.ndarray] = field(default_factory=list)
    command_ns: list[int] = field(default_factory=list)
    command: list[np.ndarray] = field(default_factory=list)

    def hardware_log(self, robot: RobotDescription, state_topic: str, command_topic: str) -> Any:
        """The recording as a :class:`~sim2real.sysid.logs.HardwareLog` (times relative to the first sample)."""
        from sim2real.sysid.logs import Commands, HardwareLog, JointStates

        firsts = [ts[0] for ts in (self.state_ns, self.command_ns) if ts]
        t0 = min(firsts) if firsts else 0
        log = HardwareLog(source=state_topic, joint_names=robot.joint_names, t0_ns=t0)
        if self.state_ns:
            log.joint_states = JointStates((np.array(self.state_ns, dtype=np.int64) - t0) * 1e-9,
                                           np.stack(self.position), np.stack(self.velocity), np.stack(self.effort),
                                           topic=state_topic)
        if self.command_ns:
            log.command = Commands((np.array(self.command_ns, dtype=np.int64) - t0) * 1e-9, np.stack(self.command),
                                   kind="position", topic=command_topic)
        return log


def _by_name(values: Any, key: tuple[str, ...], index: dict[str, int], names: tuple[str, ...]) -> np.ndarray:
    """Message array ``values`` reordered to ``names``; NaN (n,) when the message carries none."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.size != len(key):
        return np.full(len(names), np.nan)
    return arr[[index[n] for n in names]]


class ExcitationRun:
    """Send ``targets`` (T, n) rad at ``rate_hz`` through the safety layer; record states and commands.

    :param params: deployment-node parameters (validated, :func:`~sim2real.ros2.params.validate_params`):
        ``output``, ``controller``, ``topics.*``, ``safety.*``, ``trajectory.time_from_start_s``
    :param wait_state_s: give up (nothing commanded) when no joint state arrives within this time, s
    :param hold_s: how long the hold command is published after the excitation ends, s
    """

    def __init__(self, robot: RobotDescription, targets: np.ndarray, params: dict[str, Any], transport: Transport,
                 rate_hz: float, *, wait_state_s: float = 10.0, hold_s: float = 1.0) -> None:
        if robot.kind != "arm":
            raise Sim2RealError(f"excite drives arms; {robot.name} is a {robot.kind}")
        targets = np.asarray(targets, dtype=np.float64)
        if targets.ndim != 2 or targets.shape[1] != robot.n_joints or not len(targets):
            raise Sim2RealError(f"targets must have shape (T, {robot.n_joints}), got {targets.shape}")
        self.robot, self.targets, self.transport = robot, targets, transport
        self.rate_hz, self.period = rate_hz, 1.0 / rate_hz
        self.wait_state_s, self.hold_s = wait_state_s, hold_s
        p = params
        lower, upper, step = joint_position_limits(robot, self.period, p["safety.max_step_scale"])
        self.safety = safety_layer(p, lower, upper, step)
        self.adapter = arm_command_adapter(p, robot, transport, self.period)
        self.command_topic = self.adapter.topic
        self.trajectory = p["output"] == "joint_trajectory"
        topics = robot.ros2.topics
        self.state_topic = p["topics.joint_states"] or str(topics.get("joint_states", "")) or "/joint_states"
        self.estop_topic = p["topics.estop"] or str(topics.get("estop", "")) or "/estop"
        self.reader = JointStateReader(robot.ros2.joint_names)
        self.recording = Recording()
        self.phase = "waiting"
        self.stop_reason = ""
        self.sent = 0  # excitation targets sent
        n = robot.n_joints
        self.clipped = np.zeros(n, dtype=int)  # commands per joint changed by the joint limits
        self.rate_limited = np.zeros(n, dtype=int)  # ... by the rate limit
        self.last_command: np.ndarray | None = None
        self._lock = threading.Lock()
        self._q: np.ndarray | None = None
        self._arrival: float | None = None
        self._index: tuple[tuple[str, ...], dict[str, int]] = ((), {})
        self._bad_names: set[tuple[str, ...]] = set()
        self._stop_request = threading.Event()
        self._soft: SoftStart | None = None
        self._since = 0.0
        self._hold_target: np.ndarray | None = None
        transport.subscribe(self.state_topic, "sensor_msgs/msg/JointState", self._on_joint_state, sensor=True)
        transport.subscribe(self.estop_topic, "std_msgs/msg/Bool", self._on_estop)

    # --- callbacks (transport threads) ----------------------------------------------------
    def _on_joint_state(self, msg: Any) -> None:
        arrival = time.monotonic()
        state = self.reader.read(msg, arrival)
        key = tuple(msg.name)
        if state is None:
            if key not in self._bad_names:
                self._bad_names.add(key)
                LOG.warning("%s: JointState without position for all of %s (got names %s); ignored",
                            self.state_topic, list(self.reader.names), list(key))
            return
        with self._lock:
            if self.safety.event("nan_observation", not np.all(np.isfinite(state.q)), "non-finite joint state"):
                return
            if key != self._index[0]:
                self._index = (key, {name: i for i, name in enumerate(key)})
            names = self.reader.names
            stamp = state.stamp_ns if state.stamp_ns > 0 else self.transport.now_ns()
            rec = self.recording
            if rec.state_ns and stamp <= rec.state_ns[-1]:
                return  # a repeated or reordered sample: the log needs strictly increasing stamps
            rec.state_ns.append(stamp)
            rec.position.append(state.q.copy())
            rec.velocity.append(_by_name(msg.velocity, key, self._index[1], names))
            rec.effort.append(_by_name(msg.effort, key, self._index[1], names))
            self._q, self._arrival = state.q.copy(), arrival

    def _on_estop(self, msg: Any) -> None:
        if bool(msg.data):
            with self._lock:
                self.safety.latch_estop()

    # --- control ---------------------------------------------------------------------------
    def stop(self) -> None:
        """End the excitation early (thread- and signal-safe); the run still holds and returns."""
        self._stop_request.set()

    def _send(self, cmd: np.ndarray, q: np.ndarray) -> None:
        clipped = np.clip(cmd, self.safety.config.lower, self.safety.config.upper)
        out = self.safety.limit(cmd, self.last_command if self.last_command is not None else q)
        if self.safety.config.enabled:
            self.clipped += clipped != cmd
            self.rate_limited += out != clipped
        ns = self.transport.now_ns()
        self.adapter.send(out, ns)
        self.last_command = out
        rec = self.recording
        if rec.command_ns and ns <= rec.command_ns[-1]:
            ns = rec.command_ns[-1] + 1
        rec.command_ns.append(ns)
        rec.command.append(out.copy())

    def _begin_hold(self, reason: str, q: np.ndarray | None, now: float) -> None:
        self.stop_reason = self.stop_reason or reason
        self.phase, self._since = "hold", now
        if self.last_command is None or q is None:
            self.phase = "done"  # nothing was commanded: do not start now
            return
        self._hold_target = np.clip(q, self.safety.config.lower, self.safety.config.upper)
        LOG.info("excitation ended (%s) after %d of %d targets; holding the measured pose", self.stop_reason,
                 self.sent, len(self.targets))

    def tick(self, now: float) -> None:
        """One control period at ``now`` (``time.monotonic()`` s): check, step the phase, publish."""
        with self._lock:
            q, arrival = self._q, self._arrival
            if self.phase == "done":
                return
            if self.phase != "hold":
                stale = self.safety.is_stale(now, arrival, self.period)
                if self.safety.estopped:
                    self._begin_hold("estop", q, now)
                elif stale:
                    self._begin_hold("stale_observation", q, now)
                elif self._stop_request.is_set():
                    self._begin_hold("interrupted", q, now)
            if self.phase == "done":
                return
            if self.phase == "waiting":
                if q is None:
                    return
                self._soft = SoftStart(q, self.targets[0], self.safety.config.soft_start_s, now)
                self.phase = "soft_start"
                LOG.info("soft start to the first excitation target over %.2f s", self.safety.config.soft_start_s)
            assert q is not None
            if self.phase == "soft_start":
                assert self._soft is not None
                if not self._soft.done(now):
                    self._send(self._soft(now), q)
                    return
                self.phase, self._since = "gate", now
            if self.phase == "gate":
                error = float(np.max(np.abs(q - self.targets[0])))
                if error <= self.safety.config.start_gate_tolerance:
                    self.safety.event("start_gate", False)
                    self.phase = "exciting"
                    LOG.info("start gate passed (pose error %.3f rad): exciting for %.1f s", error,
                             len(self.targets) * self.period)
                elif now - self._since > GATE_TIMEOUT_S:
                    self.safety.event("start_gate", True, f"pose error {error:.3f} rad > "
                                      f"{self.safety.config.start_gate_tolerance} rad after {GATE_TIMEOUT_S:g} s")
                    self._begin_hold("start_gate", q, now)
                else:
                    self._send(self.targets[0], q)
                    return
            if self.phase == "exciting":
                self._send(self.targets[self.sent], q)
                self.sent += 1
                if self.sent == len(self.targets):
                    self._begin_hold("completed", q, now)
                return
            if self.phase == "hold":
                assert self._hold_target is not None
                self.safety.held_ticks += 1
                self._send(self._hold_target, q)
                if now - self._since >= self.hold_s and np.array_equal(self.last_command, self._hold_target):
                    self.phase = "done"

    def run(self) -> dict[str, Any]:
        """Tick on a fixed-rate clock until ``done``; returns :meth:`summary`.

        Ctrl-C (``KeyboardInterrupt``) during the run is a stop request: the run still holds.
        :raises TransportError: no joint state arrived within ``wait_state_s`` (nothing was sent).
        """
        start = time.monotonic()
        deadline = start
        LOG.info("excitation on %s over %s: %d targets at %.1f Hz to %s", self.robot.name, self.transport.kind,
                 len(self.targets), self.rate_hz, self.command_topic)
        while self.phase != "done":
            try:
                delay = deadline - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                now = time.monotonic()
                if self.phase == "waiting" and self._q is None and now - start > self.wait_state_s:
                    raise TransportError(f"no JointState with all of {list(self.reader.names)} on "
                                         f"{self.state_topic} within {self.wait_state_s:g} s; nothing was sent")
                self.tick(now)
                deadline += self.period
                if deadline < now:  # stalled for more than a period: skip the missed ticks
                    deadline = now + self.period
            except KeyboardInterrupt:
                self.stop()
        return self.summary()

    def summary(self) -> dict[str, Any]:
        rec = self.recording
        span = (rec.state_ns[-1] - rec.state_ns[0]) * 1e-9 if len(rec.state_ns) > 1 else 0.0
        names = self.robot.joint_names
        return {
            "robot": self.robot.name, "stop_reason": self.stop_reason, "completed": self.stop_reason == "completed",
            "rate_hz": self.rate_hz, "targets": len(self.targets), "targets_sent": self.sent,
            "excitation_s": round(self.sent * self.period, 6),
            "samples": {"joint_states": len(rec.state_ns), "commands": len(rec.command_ns)},
            "duration_s": round(span, 6),
            "topics": {"joint_states": self.state_topic, "command": self.command_topic, "estop": self.estop_topic},
            "safety": self.safety.report(),
            "clipped": dict(zip(names, map(int, self.clipped))),
            "rate_limited": dict(zip(names, map(int, self.rate_limited))),
        }

    def write_bag(self, path: str | Path, *, storage: str = "mcap", overwrite: bool = False) -> Path:
        """Write the recording as a rosbag2 (``storage`` mcap or sqlite3), atomically, with the topics and
        types ``sim2real calibrate`` reads: ``JointState`` (ros2 joint names) and the command topic."""
        from sim2real.sysid.bagio import write_bag

        log = self.recording.hardware_log(self.robot, self.state_topic, self.command_topic)
        topic_key = "trajectory" if self.trajectory else "command"
        return write_bag(path, log, self.robot, storage=storage, overwrite=overwrite,
                         topics={"joint_states": self.state_topic, topic_key: self.command_topic},
                         command_type="trajectory" if self.trajectory else "array")


def check_amplitude(robot: RobotDescription, amplitude: float, margin: float = 0.05) -> None:
    """Raise unless every joint can swing ``amplitude`` rad around its home pose with ``margin`` rad to spare."""
    from sim2real.sysid.excitation import _amplitudes

    if not (math.isfinite(amplitude) and amplitude > 0):
        raise Sim2RealError(f"--amplitude must be > 0 rad, got {amplitude}")
    centre, amp = _amplitudes(robot, amplitude, margin)
    short = [(j, a) for j, a in zip(robot.joints, amp) if a < amplitude - 1e-12]
    if short:
        joint, room = min(short, key=lambda ja: ja[1])
        raise Sim2RealError(f"--amplitude {amplitude:g} rad does not fit the joint limits around home: {joint.name} "
                            f"(home {joint.home:g}, limits [{joint.lower:g}, {joint.upper:g}] rad) has "
                            f"{room:.3f} rad of room with a {margin:g} rad margin")
