"""The arm hardware behind a ros2_control arm's ROS 2 topics, in (scaled) real time.

Topics (robot.yaml ``ros2``), as a ros2_control arm with a ``joint_state_broadcaster``, a
``ForwardCommandController`` and a ``JointTrajectoryController`` exposes them:

* publishes ``sensor_msgs/JointState`` on ``topics.joint_states`` at the hardware's
  ``joint_states_hz``: ``ros2.joint_names``, measured positions, velocities and efforts;
* subscribes ``std_msgs/Float64MultiArray`` on ``topics.command`` (positions in
  ``ros2.joint_names`` order), ``trajectory_msgs/JointTrajectory`` on ``topics.trajectory``
  (joints matched by name; the header stamp is ignored: a trajectory starts when it arrives, as
  with a zero stamp) and ``std_msgs/Bool`` on ``topics.estop`` (``true`` latches the e-stop).

MuJoCo advances in chunks of one publish period; after each chunk the loop publishes and
sleeps until wall time catches up with ``sim_time / realtime_factor``. A message is stamped
with the simulated time at which it arrived (wall arrival time scaled by the factor).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import numpy as np

from sim2real.robots import RobotDescription
from sim2real.sim2sim.arm import ArmHardware
from sim2real.sim2sim.hardware import ArmHardwareConfig

LOG = logging.getLogger("sim2real.sim2sim")


def _duration_s(d: Any) -> float:
    return float(d.sec) + 1e-9 * float(d.nanosec)


def trajectory_from_msg(msg: Any, joint_names: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray | None] | None:
    """``(time_from_start (k,), positions (k, n), velocities (k, n) or None)`` in ``joint_names``
    order, or ``None`` when the message does not name exactly those joints or a point lacks positions."""
    names = list(msg.joint_names)
    if sorted(names) != sorted(joint_names) or len(set(names)) != len(names):
        return None
    order = [names.index(j) for j in joint_names]
    points = list(msg.points)
    n = len(names)
    if not points or any(len(p.positions) != n for p in points):
        return None
    tfs = np.array([_duration_s(p.time_from_start) for p in points])
    pos = np.array([[p.positions[i] for i in order] for p in points], dtype=float)
    with_vel = all(len(p.velocities) == n for p in points)
    vel = np.array([[p.velocities[i] for i in order] for p in points], dtype=float) if with_vel else None
    return tfs, pos, vel


class _Inbox:
    """Messages from transport threads, stamped with wall arrival time, handed to the loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[tuple[float, str, Any]] = []
        self.received: dict[str, int] = {}

    def put(self, topic: str, kind: str, payload: Any) -> None:
        now = time.monotonic()
        with self._lock:
            self.received[topic] = self.received.get(topic, 0) + 1
            self._items.append((now, kind, payload))

    def take(self) -> list[tuple[float, str, Any]]:
        with self._lock:
            items, self._items = self._items, []
        return items


def run_arm(robot: RobotDescription, hardware: ArmHardwareConfig, transport: Any, options: Any) -> dict[str, Any]:
    """Run the arm on ``transport`` for ``options.duration`` simulated seconds (``None``: until
    Ctrl-C) at ``options.realtime_factor``; returns the JSON-able summary."""
    rtf = float(options.realtime_factor)
    hw = ArmHardware(robot, hardware, rng=np.random.default_rng(options.seed))
    names = list(robot.ros2.joint_names)
    topics = robot.ros2.topics
    controller = robot.ros2.controller or "forward_position_controller"
    cmd_topic = str(topics.get("command") or f"/{controller}/commands")
    traj_topic = str(topics.get("trajectory") or "/joint_trajectory_controller/joint_trajectory")
    estop_topic = str(topics.get("estop") or "/estop")
    state_topic = str(topics.get("joint_states") or "/joint_states")
    inbox = _Inbox()
    for topic in (cmd_topic, traj_topic, estop_topic):
        inbox.received[topic] = 0
    transport.subscribe(cmd_topic, "std_msgs/msg/Float64MultiArray",
                        lambda m: inbox.put(cmd_topic, "command", list(m.data)))
    transport.subscribe(traj_topic, "trajectory_msgs/msg/JointTrajectory",
                        lambda m: inbox.put(traj_topic, "trajectory", trajectory_from_msg(m, names)))
    transport.subscribe(estop_topic, "std_msgs/msg/Bool", lambda m: inbox.put(estop_topic, "estop", bool(m.data)))
    publish = transport.advertise(state_topic, "sensor_msgs/msg/JointState")
    chunk = max(1, int(round(hardware.physics_hz / hardware.joint_states_hz)))
    frame_id = robot.ros2.frame_id
    published = 0
    interrupted = False
    start = time.monotonic()
    last_t = 0.0
    try:
        while options.duration is None or hw.time < options.duration - 0.5 * hw.dt:
            for arrival, kind, payload in inbox.take():
                t = max(last_t, min((arrival - start) * rtf, hw.time))
                last_t = t
                if kind == "command":
                    hw.command(payload, t)
                elif kind == "trajectory":
                    if payload is None:
                        hw.counts["rejected_trajectory"] += 1
                    else:
                        hw.trajectory(*payload, t=t)
                elif payload:  # e-stop pressed
                    if hw.estopped_at is None:
                        LOG.warning("e-stop latched at %.3f s: holding position", hw.time)
                    hw.estop()
            steps = chunk if options.duration is None else max(
                1, min(chunk, int(round((options.duration - hw.time) / hw.dt))))
            hw.step(steps)
            s = hw.state()
            ns = transport.now_ns()
            publish({"header": {"stamp": {"sec": ns // 1_000_000_000, "nanosec": ns % 1_000_000_000},
                                "frame_id": frame_id},
                     "name": names, "position": s.position, "velocity": s.velocity, "effort": s.effort})
            published += 1
            lag = start + hw.time / rtf - time.monotonic()
            if lag > 0:
                time.sleep(lag)
    except KeyboardInterrupt:
        interrupted = True
    wall = time.monotonic() - start
    return summarize(hw, robot, received=dict(inbox.received), published=published, wall_s=wall,
                     realtime_factor=rtf, transport=getattr(transport, "kind", ""), interrupted=interrupted)


def summarize(hw: ArmHardware, robot: RobotDescription, *, received: dict[str, int], published: int, wall_s: float,
              realtime_factor: float, transport: str, interrupted: bool) -> dict[str, Any]:
    """The run's JSON-able summary; it holds no hardware parameter (a drawn hardware stays secret)."""
    names = list(robot.ros2.joint_names)
    ee_end = hw.state().ee_position
    q, _ = hw.true_state()
    per_joint = lambda arr: {nm: (float(v) if isinstance(v, (float, np.floating)) else int(v))  # noqa: E731
                             for nm, v in zip(names, arr)}
    return {
        "robot": robot.name, "kind": robot.kind, "hardware": hw.hardware.source, "transport": transport,
        "sim_time_s": round(hw.time, 6), "wall_time_s": round(wall_s, 3), "realtime_factor": realtime_factor,
        "physics_steps": hw.steps, "joint_states_published": published, "interrupted": interrupted,
        "commands_received": received,
        "commands_accepted": {"forward_command": hw.counts["commands"], "joint_trajectory": hw.counts["trajectories"]},
        "end_effector": {"link": robot.end_effector_link, "start": hw.ee_start.tolist(), "end": ee_end.tolist(),
                         "displacement": float(np.linalg.norm(ee_end - hw.ee_start)),
                         "path_length": hw.ee_path_length},
        "final_joint_positions": per_joint(q),
        "effort": {"max_abs_over_limit": per_joint(hw.max_abs_effort / hw.effort_limit),
                   "saturated_steps": per_joint(hw.saturated_steps)},
        "safety": {"estop": hw.estopped_at is not None, "estop_at_s": hw.estopped_at,
                   "rejected_nan": hw.counts["rejected_nan"], "rejected_size": hw.counts["rejected_size"],
                   "rejected_trajectory": hw.counts["rejected_trajectory"],
                   "ignored_while_estopped": hw.counts["ignored_estopped"],
                   "effort_limit_steps": int(hw.saturated_steps.sum()),
                   "position_limit_steps": per_joint(hw.limit_steps)},
    }
