"""The quadrotor hardware file: the true physical parameters of one simulated vehicle.

A YAML mapping (every key optional; defaults are the robot's datasheet numbers)::

    firmware: crazyflie          # crazyflie (Crazyswarm2 topics) | px4 (px4_msgs offboard topics)
    physics_hz: 500              # MuJoCo and flight-controller rate, Hz (>= 500)
    start: {position: [0, 0, 1], yaw: 0.0}        # m world ENU, rad; the vehicle starts hovering there
    body: {mass_factor: 1.0, inertia_factor: 1.0, payload_mass: 0.0, payload_offset: [0, 0, 0]}  # kg, m body FLU
    rotors: {kf_factor: 1.0, km_factor: 1.0, motor_tau: 0.02, max_rpm: 21702}  # s, rpm
    aero: {drag: [0, 0, 0], wind_force: [0, 0, 0]}  # N/(m/s) body x/y/z, N world
    sensors: {odometry_hz: 100, pose_hz: 100, imu_hz: 200, delay: 0.0, position_noise: 0.0,
              velocity_noise: 0.0, attitude_noise: 0.0, gyro_noise: 0.0, accel_noise: 0.0,  # Hz, s, std SI
              odometry_twist: body}  # body (REP-103) | crazyswarm2 (linear world, angular zero)
    command_delay: 0.0           # s between a command's arrival and the firmware seeing it
    failsafe: {stabilize_s: 0.5, shutdown_s: 2.0, offboard_loss_s: 1.0, offboard_engage_s: 0.2}

A draw file has the same layout; a leaf may be ``{distribution: uniform | log_uniform, low: L,
high: H}`` (scalars, or lists of 3 drawn per element), ``{choice: [a, b, ...]}`` or a fixed
value. Leaves are drawn in file order from one ``numpy.random.Generator``, so a seed
reproduces the vehicle exactly, and the result is validated like a hardware file.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from sim2real._io import read_yaml_file
from sim2real.errors import ConfigError
from sim2real.robots import RobotDescription
from sim2real.sim2sim.quadrotor_model import GRAVITY, Airframe, airframe_from_params, nominal_airframe

FIRMWARES = ("crazyflie", "px4")
#: nav_msgs/Odometry twist conventions: REP-103 (linear and angular in the body frame), or what
#: the Crazyswarm2 server publishes (the Crazyflie's state estimate: linear in the world frame, angular zero)
ODOMETRY_TWISTS = ("body", "crazyswarm2")


def _number(lo: float | None = None, *, strict: bool = False) -> Callable[[Any, str], Any]:
    def check(value: Any, where: str) -> Any:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if ok and lo is not None:
            ok = value > lo if strict else value >= lo
        if not ok:
            bound = "" if lo is None else f" {'>' if strict else '>='} {lo:g}"
            raise ValueError(f"expected a finite number{bound}, got {value!r}")
        return float(value)
    return check


def _vector(lo: float | None = None) -> Callable[[Any, str], Any]:
    item = _number(lo)

    def check(value: Any, where: str) -> Any:
        if not isinstance(value, (list, tuple)) or len(value) != 3:
            raise ValueError(f"expected a list of 3 numbers, got {value!r}")
        return [item(v, where) for v in value]
    return check


def _choice(options: tuple[str, ...]) -> Callable[[Any, str], Any]:
    def check(value: Any, where: str) -> Any:
        if value not in options:
            raise ValueError(f"expected one of {list(options)}, got {value!r}")
        return value
    return check


def _defaults(robot: RobotDescription) -> dict[str, Any]:
    nominal = nominal_airframe(robot)
    firmware = "crazyflie" if robot.ros2.controller.startswith("crazy") else "px4"
    return {
        "firmware": firmware, "physics_hz": 500.0,
        "start": {"position": [float(v) for v in robot.model.base_position], "yaw": 0.0},
        "body": {"mass_factor": 1.0, "inertia_factor": 1.0, "payload_mass": 0.0, "payload_offset": [0.0, 0.0, 0.0]},
        "rotors": {"kf_factor": 1.0, "km_factor": 1.0, "motor_tau": nominal.motor_tau, "max_rpm": nominal.max_rpm},
        "aero": {"drag": [0.0, 0.0, 0.0], "wind_force": [0.0, 0.0, 0.0]},
        "sensors": {"odometry_hz": 100.0, "pose_hz": 100.0, "imu_hz": 200.0, "delay": 0.0, "position_noise": 0.0,
                    "velocity_noise": 0.0, "attitude_noise": 0.0, "gyro_noise": 0.0, "accel_noise": 0.0,
                    "odometry_twist": "body"},
        "command_delay": 0.0,
        "failsafe": {"stabilize_s": 0.5, "shutdown_s": 2.0, "offboard_loss_s": 1.0, "offboard_engage_s": 0.2},
    }


_NONNEG, _POS = _number(0.0), _number(0.0, strict=True)
#: key path → check; the layout of the hardware file
SCHEMA: dict[str, Any] = {
    "firmware": _choice(FIRMWARES), "physics_hz": _number(500.0),
    "start": {"position": _vector(), "yaw": _number()},
    "body": {"mass_factor": _POS, "inertia_factor": _POS, "payload_mass": _NONNEG, "payload_offset": _vector()},
    "rotors": {"kf_factor": _POS, "km_factor": _NONNEG, "motor_tau": _NONNEG, "max_rpm": _POS},
    "aero": {"drag": _vector(0.0), "wind_force": _vector()},
    "sensors": {"odometry_hz": _NONNEG, "pose_hz": _NONNEG, "imu_hz": _NONNEG, "delay": _NONNEG,
                "position_noise": _NONNEG, "velocity_noise": _NONNEG, "attitude_noise": _NONNEG,
                "gyro_noise": _NONNEG, "accel_noise": _NONNEG, "odometry_twist": _choice(ODOMETRY_TWISTS)},
    "command_delay": _NONNEG,
    "failsafe": {"stabilize_s": _POS, "shutdown_s": _POS, "offboard_loss_s": _POS, "offboard_engage_s": _NONNEG},
}


def _merge(raw: Any, schema: dict[str, Any], out: dict[str, Any], file: str, path: tuple[str, ...]) -> None:
    if not isinstance(raw, dict):
        raise ConfigError(f"expected a mapping, got {type(raw).__name__}", file=file, path=path)
    for key, value in raw.items():
        where = (*path, str(key))
        if key not in schema:
            raise ConfigError(f"unknown key (expected one of {', '.join(schema)})", file=file, path=where)
        if isinstance(schema[key], dict):
            _merge(value, schema[key], out[key], file, where)
        else:
            try:
                out[key] = schema[key](value, ".".join(where))
            except ValueError as exc:
                raise ConfigError(str(exc), file=file, path=where) from None


@dataclass(frozen=True)
class Hardware:
    """One simulated quadrotor: ``params`` is the complete, validated hardware-file mapping
    (module docstring), ``airframe`` the true physical model built from it."""

    params: dict[str, Any]
    airframe: Airframe
    source: str = ""  # the hardware file, or "drawn from <draw file>"

    def to_dict(self) -> dict[str, Any]:
        """The hardware file of this vehicle (loads back to the same hardware)."""
        return copy.deepcopy(self.params)


def hardware_from_mapping(raw: Any, robot: RobotDescription, file: str = "<hardware>", source: str = "") -> Hardware:
    """Validate ``raw`` (a parsed hardware file, ``None`` = all defaults) against ``robot``."""
    params = _defaults(robot)
    if raw is not None:
        _merge(raw, SCHEMA, params, file, ())
    frame = airframe_from_params(nominal_airframe(robot), params)
    lift = 4.0 * frame.kf * frame.max_rpm**2
    if lift <= 1.05 * frame.total_mass * GRAVITY:
        raise ConfigError(f"the rotors lift {lift:.3f} N at max_rpm, not enough for {frame.total_mass:.4f} kg "
                          f"({frame.total_mass * GRAVITY:.3f} N) with a 5% margin", file=file, path=("rotors",))
    fs = params["failsafe"]
    if fs["shutdown_s"] <= fs["stabilize_s"]:
        raise ConfigError("shutdown_s must be longer than stabilize_s", file=file, path=("failsafe", "shutdown_s"))
    return Hardware(params=params, airframe=frame, source=source or file)


def load_hardware(path: str, robot: RobotDescription) -> Hardware:
    """Read and validate a hardware file (:class:`ConfigError` naming the file and key on any problem)."""
    return hardware_from_mapping(read_yaml_file(path, what="hardware file"), robot, str(path))


DISTRIBUTIONS = ("uniform", "log_uniform")


def _draw_leaf(spec: Any, rng: np.random.Generator, file: str, path: tuple[str, ...]) -> Any:
    if isinstance(spec, dict) and "distribution" in spec:
        if set(spec) != {"distribution", "low", "high"} or spec["distribution"] not in DISTRIBUTIONS:
            raise ConfigError(f"expected {{distribution: {' | '.join(DISTRIBUTIONS)}, low: L, high: H}}, got {spec!r}",
                              file=file, path=path)
        try:
            lo, hi = np.asarray(spec["low"], dtype=np.float64), np.asarray(spec["high"], dtype=np.float64)
        except (TypeError, ValueError):
            raise ConfigError(f"expected numbers or lists of numbers, got {spec!r}", file=file, path=path) from None
        log = spec["distribution"] == "log_uniform"
        if (lo.shape != hi.shape or np.any(hi < lo) or not np.all(np.isfinite(lo) & np.isfinite(hi))
                or (log and np.any(lo <= 0))):
            raise ConfigError(f"expected finite low <= high of one shape{' (> 0 for log_uniform)' if log else ''}, "
                              f"got low={spec['low']!r}, high={spec['high']!r}", file=file, path=path)
        value = np.asarray(np.exp(rng.uniform(np.log(lo), np.log(hi))) if log else rng.uniform(lo, hi))
        return value.tolist() if value.ndim else float(value)
    if isinstance(spec, dict) and set(spec) == {"choice"}:
        options = spec["choice"]
        if not isinstance(options, list) or not options:
            raise ConfigError(f"expected a non-empty list, got {options!r}", file=file, path=(*path, "choice"))
        return copy.deepcopy(options[int(rng.integers(len(options)))])
    return spec


def _draw_tree(spec: Any, schema: dict[str, Any], rng: np.random.Generator, file: str,
               path: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(spec, dict):
        raise ConfigError(f"expected a mapping, got {type(spec).__name__}", file=file, path=path)
    out: dict[str, Any] = {}
    for key, value in spec.items():
        where = (*path, str(key))
        if key not in schema:
            raise ConfigError(f"unknown key (expected one of {', '.join(schema)})", file=file, path=where)
        sub = schema[key]
        out[key] = (_draw_tree(value, sub, rng, file, where) if isinstance(sub, dict)
                    else _draw_leaf(value, rng, file, where))
    return out


def draw_hardware(path: str, robot: RobotDescription, rng: np.random.Generator) -> Hardware:
    """Draw one vehicle from a file of ranges (module docstring); reproducible for one ``rng`` state."""
    spec = read_yaml_file(path, what="hardware draw file")
    return hardware_from_mapping(_draw_tree(spec if spec is not None else {}, SCHEMA, rng, str(path), ()), robot,
                                 str(path), source=f"drawn from {path}")
