"""Nominal values of profile kinds as far as a robot description states them.

``robot.yaml`` gives nominal physics under ``nominal`` (kind -> value or ``{name: value}``),
control gains under ``control``, joint efforts under ``joints`` and model numbers under
``model_params``. Values that only the model file (URDF/MJCF) knows, such as link masses,
are not available here: :func:`nominal_value` returns ``None`` for them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from sim2real.robots import RobotDescription

#: nominal values that hold for every robot (SI units)
WORLD_NOMINAL: dict[str, Any] = {"gravity": [0.0, 0.0, -9.81]}


def nominal_value(robot: "RobotDescription | None", param: str, target: str | None = None) -> np.ndarray | None:
    """Nominal value of ``param`` for ``target`` (``None`` for global kinds), or ``None`` if unknown.

    Returns a float array (shape ``(1,)`` for scalars, ``(n,)`` for vectors).
    """
    value: Any = None
    if robot is not None:
        if param in robot.nominal:
            value = robot.nominal[param]
            if isinstance(value, dict):
                value = value.get(target) if target is not None else None
        elif param == "model_param" and target is not None:
            value = robot.model_params.get(target)
        elif param in ("position_gain", "velocity_gain", "stall_torque", "free_speed"):
            value = robot.actuator_value(param, target) if target in robot.joint_names else None
            if value is None and param in ("position_gain", "velocity_gain"):
                value = getattr(robot.control, param)
        elif param == "motor_strength" and target in robot.joint_names:
            value = robot.joints[robot.joint_names.index(target)].max_effort
    if value is None:
        value = WORLD_NOMINAL.get(param)
    if value is None or isinstance(value, bool):
        return None
    try:
        return np.atleast_1d(np.asarray(value, dtype=np.float64))
    except (TypeError, ValueError):
        return None
