"""The MuJoCo quadrotor behind its real ROS 2 topics (``sim2real sim2sim`` for robots of kind ``quadrotor``).

One process plays the vehicle: the airframe in MuJoCo
(:mod:`~sim2real.sim2sim.quadrotor_model`) with the true parameters of a hardware file
(:mod:`~sim2real.sim2sim.quadrotor_hardware`), its onboard flight controller
(:mod:`~sim2real.sim2sim.quadrotor_firmware`) fed by the Crazyflie or PX4 commander
(:mod:`~sim2real.sim2sim.quadrotor_commanders`), and its sensors:

| topic (robot.yaml ``ros2.topics``) | type | content |
| --- | --- | --- |
| ``odometry`` | ``nav_msgs/Odometry`` | pose in ``ros2.frame_id`` (ENU), twist in ``base_link`` (FLU) |
| ``pose`` | ``geometry_msgs/PoseStamped`` | motion-capture pose |
| ``imu`` | ``sensor_msgs/Imu`` | orientation, gyro (rad/s FLU), specific force (m/s² FLU) |
| ``px4_odometry`` (PX4) | ``px4_msgs/VehicleOdometry`` | NED position/velocity, FRD→NED attitude, FRD rates |

each at its ``sensors.*_hz`` rate (0 turns a stream off), ``sensors.delay`` s late, with
Gaussian noise of the configured standard deviations (position m, velocity m/s, attitude rad
as a small random rotation, gyro rad/s, accelerometer m/s²). ``sensors.odometry_twist:
crazyswarm2`` publishes the odometry twist as the Crazyswarm2 server does (the Crazyflie's state
estimate: linear velocity in the world frame, angular zero). Commands reach the firmware
``command_delay`` s after they arrive. The firmware flies on the true state.

:class:`QuadrotorSim` is the transport-free core (``deliver`` a message, ``step`` physics);
:func:`run` paces it against the wall clock (``realtime_factor`` simulated seconds per
second) on a transport and returns the summary.
"""

from __future__ import annotations

import heapq
import itertools
import math
import threading
import time
from typing import Any

import mujoco
import numpy as np

from sim2real.robots import RobotDescription
from sim2real.sim2sim.quadrotor_commanders import COMMANDERS, EventLog
from sim2real.sim2sim.quadrotor_firmware import FlightController, Setpoint
from sim2real.sim2sim.quadrotor_hardware import Hardware, draw_hardware, load_hardware
from sim2real.sim2sim.quadrotor_model import QuadrotorDynamics, QuadState, nominal_airframe

__all__ = ["Hardware", "QuadrotorSim", "draw_hardware", "load_hardware", "run"]

#: touching the floor faster than this (m/s) or more tilted than CRASH_TILT (rad) is a crash
CRASH_SPEED = 1.0
CRASH_TILT = 1.0
#: world ENU -> NED (its own inverse) and body FLU -> FRD (diagonal)
ENU_TO_NED = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]])
FLU_TO_FRD = np.array([1.0, -1.0, -1.0])
#: simulated seconds of hover at the start position before the clock starts
SETTLE_S = 5.0


def _stamp(t_ns: int) -> dict[str, int]:
    return {"sec": t_ns // 1_000_000_000, "nanosec": t_ns % 1_000_000_000}


def _xyz(v: np.ndarray) -> dict[str, float]:
    return {"x": float(v[0]), "y": float(v[1]), "z": float(v[2])}


class QuadrotorSim:
    """Airframe + firmware + commander + sensors, stepped in simulated time.

    :param seed: seed of the sensor-noise generator.
    :param clock_ns: ROS time (ns) for message stamps at simulated time ``t`` (default: ``t`` itself).
    """

    def __init__(self, robot: RobotDescription, hardware: Hardware, seed: int = 0,
                 clock_ns: Any = None) -> None:
        p = hardware.params
        self.robot, self.hardware = robot, hardware
        self.dyn = QuadrotorDynamics(hardware.airframe, p["physics_hz"])
        start, yaw = np.asarray(p["start"]["position"], dtype=np.float64), float(p["start"]["yaw"])
        self.dyn.reset(start, yaw)
        self.fc = FlightController(nominal_airframe(robot))
        self.fc.reset(yaw)
        self.log = EventLog()
        hold = Setpoint("position", position=start.copy(), yaw=yaw)
        # the vehicle has taken off and hovered before the clock starts: the firmware's
        # integrators have absorbed the true mass, rotor constants and wind
        for _ in range(int(round(SETTLE_S / self.dyn.dt))):
            state = self.dyn.state()
            self.dyn.command(self.fc.update(hold, state, self.dyn.dt))
            self.dyn.step()
        self.dyn.data.qpos[:3] = start  # integrators settled; the clock starts with the vehicle at its start
        mujoco.mj_forward(self.dyn.model, self.dyn.data)
        self._t0 = self.dyn.time
        self.commander = COMMANDERS[p["firmware"]](robot, p["failsafe"], hold, self.log)
        self.rng = np.random.default_rng(seed)
        self.clock_ns = clock_ns or (lambda t: int(round(t * 1e9)))
        self.command_delay, self.sensor_delay = p["command_delay"], p["sensors"]["delay"]
        self._pending: list[tuple[float, int, Any, Any]] = []  # (due, seq, handler, msg)
        self._outbox: list[tuple[float, int, str, dict[str, Any]]] = []  # (due, seq, topic key, fields)
        self._seq = itertools.count()
        topics = robot.ros2.topics
        self.streams = {key: (str(topics[key]), type_name, p["sensors"][rate], 0.0)
                        for key, type_name, rate in (("odometry", "nav_msgs/msg/Odometry", "odometry_hz"),
                                                     ("pose", "geometry_msgs/msg/PoseStamped", "pose_hz"),
                                                     ("imu", "sensor_msgs/msg/Imu", "imu_hz"))
                        if topics.get(key) and p["sensors"][rate] > 0}
        if p["firmware"] == "px4" and topics.get("px4_odometry") and p["sensors"]["odometry_hz"] > 0:
            self.streams["px4_odometry"] = (str(topics["px4_odometry"]), "px4_msgs/msg/VehicleOdometry",
                                            p["sensors"]["odometry_hz"], 0.0)
        self._next_sample = {key: 0.0 for key in self.streams}
        self.received: dict[str, dict[str, Any]] = {}
        self.published: dict[str, int] = {key: 0 for key in self.streams}
        self._trace_init(self.dyn.state().position)

    # --- commands ------------------------------------------------------------------------
    @property
    def time(self) -> float:
        """Simulated seconds since the clock started (after the hover before it)."""
        return self.dyn.time - self._t0

    def deliver(self, topic: str, handler: Any, msg: Any, arrival: float | None = None) -> None:
        """A command message received on ``topic`` at simulated time ``arrival`` (default: now)."""
        t = self.time if arrival is None else arrival
        entry = self.received.setdefault(topic, {"count": 0, "first_s": round(t, 4), "last_s": 0.0})
        entry["count"] += 1
        entry["last_s"] = round(t, 4)
        heapq.heappush(self._pending, (t + self.command_delay, next(self._seq), handler, msg))

    # --- physics and sensors -------------------------------------------------------------
    def step(self) -> list[tuple[str, dict[str, Any]]]:
        """One physics step; returns the sensor messages due now as ``(stream key, fields)``."""
        t = self.time
        state = self.dyn.state()
        while self._pending and self._pending[0][0] <= t:
            _, _, handler, msg = heapq.heappop(self._pending)
            handler(msg, t)
            self._last_command = {"t": round(t, 4), "position": [round(float(v), 4) for v in state.position]}
        sp = self.commander.setpoint(t, state)
        self.dyn.command(self.fc.update(sp, state, self.dyn.dt))
        self.dyn.step()
        state = self.dyn.state()
        self._trace(state)
        for key in self.streams:
            if self.time + 1e-9 >= self._next_sample[key]:
                self._next_sample[key] += 1.0 / self.streams[key][2]
                heapq.heappush(self._outbox, (self.time + self.sensor_delay, next(self._seq), key,
                                              self._measure(key, state)))
        out = []
        while self._outbox and self._outbox[0][0] <= self.time + 1e-9:
            _, _, key, fields = heapq.heappop(self._outbox)
            self.published[key] += 1
            out.append((key, fields))
        return out

    def _noisy_quat(self, q: np.ndarray) -> np.ndarray:
        std = self.hardware.params["sensors"]["attitude_noise"]
        if std <= 0:
            return q
        x, y, z, w = q
        out = np.array([w, x, y, z], dtype=np.float64)
        mujoco.mju_quatIntegrate(out, self.rng.normal(0.0, std, 3), 1.0)  # body-frame rotation by the noise vector
        return np.array([out[1], out[2], out[3], out[0]])

    def _px4_odometry(self, s: QuadState) -> dict[str, Any]:
        """``px4_msgs/VehicleOdometry``: position/velocity NED, attitude FRD body → NED (``q`` = w, x, y, z)."""
        n = self.hardware.params["sensors"]
        x, y, z, w = self._noisy_quat(s.orientation)
        rot_enu = np.empty(9)
        mujoco.mju_quat2Mat(rot_enu, np.array([w, x, y, z]))
        rot_ned = ENU_TO_NED @ rot_enu.reshape(3, 3) @ np.diag(FLU_TO_FRD)
        q = np.empty(4)
        mujoco.mju_mat2Quat(q, rot_ned.ravel())
        pos = ENU_TO_NED @ (s.position + self.rng.normal(0.0, n["position_noise"], 3))
        vel = ENU_TO_NED @ (s.velocity + self.rng.normal(0.0, n["velocity_noise"], 3))
        gyro = FLU_TO_FRD * (s.body_rates + self.rng.normal(0.0, n["gyro_noise"], 3))
        us = self.clock_ns(self.time) // 1000
        return {"timestamp": us, "timestamp_sample": us, "pose_frame": 1, "position": pos.tolist(), "q": q.tolist(),
                "velocity_frame": 1, "velocity": vel.tolist(), "angular_velocity": gyro.tolist(),
                "position_variance": [n["position_noise"] ** 2] * 3,
                "orientation_variance": [n["attitude_noise"] ** 2] * 3,
                "velocity_variance": [n["velocity_noise"] ** 2] * 3, "reset_counter": 0, "quality": 0}

    def _measure(self, key: str, s: QuadState) -> dict[str, Any]:
        n = self.hardware.params["sensors"]
        if key == "px4_odometry":
            return self._px4_odometry(s)
        header = {"stamp": _stamp(self.clock_ns(self.time)), "frame_id": self.robot.ros2.frame_id or "world"}
        quat = dict(zip("xyzw", map(float, self._noisy_quat(s.orientation))))
        if key == "imu":
            gyro = s.body_rates + self.rng.normal(0.0, n["gyro_noise"], 3)
            accel = s.specific_force + self.rng.normal(0.0, n["accel_noise"], 3)
            return {"header": {**header, "frame_id": "base_link"}, "orientation": quat,
                    "angular_velocity": _xyz(gyro), "linear_acceleration": _xyz(accel)}
        pos = s.position + self.rng.normal(0.0, n["position_noise"], 3)
        pose = {"position": _xyz(pos), "orientation": quat}
        if key == "pose":
            return {"header": header, "pose": pose}
        world = n["odometry_twist"] == "crazyswarm2"
        vel = (s.velocity if world else s.rotation.T @ s.velocity) + self.rng.normal(0.0, n["velocity_noise"], 3)
        gyro = np.zeros(3) if world else s.body_rates + self.rng.normal(0.0, n["gyro_noise"], 3)
        return {"header": header, "child_frame_id": "base_link", "pose": {"pose": pose},
                "twist": {"twist": {"linear": _xyz(vel), "angular": _xyz(gyro)}}}

    # --- trajectory summary ----------------------------------------------------------------
    def _trace_init(self, start: np.ndarray) -> None:
        self._start, self._last = start.copy(), start.copy()
        self._path = 0.0
        self._zmin = self._zmax = float(start[2])
        self._max_speed = self._max_tilt = 0.0
        self._max_tilt_t = 0.0
        self._touch: dict[str, Any] | None = None
        self._touching = False
        self._last_command: dict[str, Any] | None = None

    def _trace(self, s: QuadState) -> None:
        self._path += float(np.linalg.norm(s.position - self._last))
        self._last = s.position.copy()
        self._zmin, self._zmax = min(self._zmin, float(s.position[2])), max(self._zmax, float(s.position[2]))
        speed = float(np.linalg.norm(s.velocity))
        self._max_speed = max(self._max_speed, speed)
        rot = s.rotation
        tilt = math.acos(float(np.clip(rot[2, 2], -1.0, 1.0)))
        if tilt > self._max_tilt:
            self._max_tilt, self._max_tilt_t = tilt, self.time
        touching = self.dyn.floor_contact()
        if touching and not self._touching:
            crash = speed > CRASH_SPEED or tilt > CRASH_TILT
            self.log.add(self.time, "crash" if crash else "ground_contact", speed=round(speed, 3),
                         tilt=round(tilt, 3))
            if self._touch is None:
                self._touch = {"first_s": round(self.time, 4), "speed_m_s": round(speed, 3), "crash": crash}
            elif crash:
                self._touch["crash"] = True
        self._touching = touching

    def summary(self) -> dict[str, Any]:
        """JSON-able summary of the run so far."""
        s = self.dyn.state()
        rot = s.rotation
        return {
            "robot": self.robot.name, "kind": self.robot.kind, "hardware": self.hardware.source,
            "firmware": self.hardware.params["firmware"],
            "sim_time_s": round(self.time, 4), "physics_hz": self.hardware.params["physics_hz"],
            "commands": self.received,
            "published": {self.streams[k][0]: n for k, n in self.published.items()},
            "trajectory": {
                "start": [round(float(v), 4) for v in self._start], "end": [round(float(v), 4) for v in s.position],
                "end_velocity": [round(float(v), 4) for v in s.velocity],
                "end_yaw": round(math.atan2(rot[1, 0], rot[0, 0]), 4),
                "min_z": round(self._zmin, 4), "max_z": round(self._zmax, 4), "path_length_m": round(self._path, 4),
                "max_speed_m_s": round(self._max_speed, 4), "max_tilt_rad": round(self._max_tilt, 4),
                "max_tilt_at_s": round(self._max_tilt_t, 4),
            },
            "last_command": self._last_command or {"t": None, "position": None},
            "ground_contact": self._touch or {"first_s": None, "speed_m_s": None, "crash": False},
            "safety_events": self.log.events, "event_counts": self.log.counts,
        }


def run(robot: RobotDescription, hardware: Hardware, transport: Any, options: Any) -> dict[str, Any]:
    """Simulate behind the robot's topics on ``transport`` for ``options.duration`` simulated seconds
    (``None``: until ``KeyboardInterrupt``), ``options.realtime_factor`` simulated s per wall s;
    returns :meth:`QuadrotorSim.summary` plus the wall time taken."""
    rtf = float(getattr(options, "realtime_factor", 1.0) or 1.0)
    duration = getattr(options, "duration", None)
    wall0_ns = time.time_ns()
    sim = QuadrotorSim(robot, hardware, seed=int(getattr(options, "seed", 0) or 0),
                       clock_ns=lambda t: wall0_ns + int(round(t / rtf * 1e9)))
    lock = threading.Lock()
    inbox: list[tuple[float, str, Any, Any]] = []
    start = time.monotonic()

    def receiver(topic: str, handler: Any) -> Any:
        def callback(msg: Any) -> None:
            with lock:
                inbox.append(((time.monotonic() - start) * rtf, topic, handler, msg))
        return callback

    for topic, type_name, handler in sim.commander.subscriptions:
        transport.subscribe(topic, type_name, receiver(topic, handler))
    publishers = {key: transport.advertise(topic, type_name) for key, (topic, type_name, _, _) in sim.streams.items()}
    dt = sim.dyn.dt
    lagging, interrupted = 0, False
    try:
        while duration is None or sim.time < duration - 1e-9:
            with lock:
                arrived, inbox[:] = list(inbox), []
            for arrival, topic, handler, msg in arrived:
                sim.deliver(topic, handler, msg, arrival=min(arrival, sim.time))
            for key, fields in sim.step():
                publishers[key](fields)
            ahead = start + sim.time / rtf - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
            elif ahead < -10 * dt / rtf:
                lagging += 1
    except KeyboardInterrupt:
        interrupted = True
    out = sim.summary()
    out["transport"] = getattr(transport, "kind", "")
    out["interrupted"] = interrupted
    out["realtime_factor"] = rtf
    out["wall_time_s"] = round(time.monotonic() - start, 3)
    out["steps_behind_real_time"] = lagging
    return out
