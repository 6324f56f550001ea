"""Hardware logs as CSV: one header row, one row per sample, comma separated.

Column layout (names after the prefix are robot.yaml joint names or ``ros2.joint_names``):

================  ==========================================================  ===========
column            meaning                                                     unit
================  ==========================================================  ===========
``t``             sample time, required, strictly increasing                  s
``q_<joint>``     joint position (all joints or none)                          rad
``qd_<joint>``    joint velocity (optional)                                    rad/s
``tau_<joint>``   measured joint effort (optional)                             N·m
``cmd_<joint>``   joint command sent at ``t`` (optional; meaning from          rad, rad/s
                  robot.yaml ``control.mode``)                                 or N·m
``pos_x/y/z``     base position, world frame (quadrotor odometry)              m
``quat_x/y/z/w``  base orientation, xyzw                                       –
``vel_x/y/z``     base linear velocity, body frame                             m/s
``rate_x/y/z``    base angular velocity, body frame                            rad/s
``motor_<i>``     motor/thrust command ``i`` (``i`` = 0, 1, ...)               normalised
================  ==========================================================  ===========

Streams may be sampled at different rates: leave a stream's cells empty on rows where it has
no sample. A stream is the set of rows where all its columns are filled.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

from sim2real._io import atomic_open
from sim2real.errors import LogError
from sim2real.robots import RobotDescription
from sim2real.sysid.logs import Commands, HardwareLog, JointStates, Odometry, check_monotonic

_ODOM = ("pos_x", "pos_y", "pos_z", "quat_x", "quat_y", "quat_z", "quat_w",
         "vel_x", "vel_y", "vel_z", "rate_x", "rate_y", "rate_z")


def _joint_columns(header: list[str], prefix: str, robot: RobotDescription, file: str) -> list[int] | None:
    """Column index per robot joint for ``<prefix><joint>``, or ``None`` when no such columns exist."""
    cols = {h[len(prefix):]: i for i, h in enumerate(header) if h.startswith(prefix)}
    if not cols:
        return None
    out = []
    for sim, ros in zip(robot.joint_names, robot.ros2.joint_names):
        idx = cols.pop(sim, None)
        idx = cols.pop(ros, idx)
        if idx is None:
            raise LogError(f"{file}: column {prefix}{ros}: missing (need one {prefix}<joint> column per joint)")
        out.append(idx)
    if cols:
        raise LogError(f"{file}: columns {[prefix + c for c in cols]}: unknown joint names; expected "
                       f"{list(robot.ros2.joint_names)} or {robot.joint_names}")
    return out


def read_csv(path: str | os.PathLike[str], robot: RobotDescription) -> HardwareLog:
    """Read a CSV log (layout in the module docstring) into a :class:`HardwareLog`.

    :raises LogError: missing file or ``t`` column, unparsable cell, unknown joint columns,
        non-monotonic times, no rows
    """
    file = str(path)
    try:
        with open(file, newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
    except OSError as exc:
        raise LogError(f"{file}: cannot read ({exc.strerror})") from None
    rows = [r for r in rows if r and not r[0].startswith("#")]
    if not rows:
        raise LogError(f"{file}: empty CSV (expected a header row with a 't' column)")
    header = [h.strip() for h in rows[0]]
    if "t" not in header:
        raise LogError(f"{file}: column t: missing (header is {header})")
    data = np.full((len(rows) - 1, len(header)), np.nan)
    for r, row in enumerate(rows[1:]):
        if len(row) != len(header):
            raise LogError(f"{file}: row {r + 2}: {len(row)} cells, header has {len(header)}")
        for c, cell in enumerate(row):
            cell = cell.strip()
            if cell:
                try:
                    data[r, c] = float(cell)
                except ValueError:
                    raise LogError(f"{file}: row {r + 2}, column {header[c]}: not a number: {cell!r}") from None
    if data.shape[0] == 0:
        raise LogError(f"{file}: no data rows")
    t_all = data[:, header.index("t")]
    if np.isnan(t_all).any():
        raise LogError(f"{file}: column t: empty cell in row {int(np.flatnonzero(np.isnan(t_all))[0]) + 2}")
    log = HardwareLog(source=file, joint_names=robot.joint_names)

    def rows_with(cols: list[int]) -> np.ndarray:
        return ~np.isnan(data[:, cols]).any(axis=1)

    q_cols = _joint_columns(header, "q_", robot, file)
    if q_cols is not None:
        m = rows_with(q_cols)
        check_monotonic(t_all[m], file=file, topic="columns q_*")
        nan = np.full((int(m.sum()), robot.n_joints), np.nan)
        vel = eff = nan
        qd_cols = _joint_columns(header, "qd_", robot, file)
        if qd_cols is not None:
            vel = data[m][:, qd_cols]
        tau_cols = _joint_columns(header, "tau_", robot, file)
        if tau_cols is not None:
            eff = data[m][:, tau_cols]
        log.joint_states = JointStates(t_all[m], data[m][:, q_cols], vel, eff.copy(), topic="columns q_*")
    cmd_cols = _joint_columns(header, "cmd_", robot, file)
    if cmd_cols is not None:
        m = rows_with(cmd_cols)
        check_monotonic(t_all[m], file=file, topic="columns cmd_*")
        kind = {"velocity": "velocity", "torque": "effort"}.get(robot.control.mode, "position")
        log.command = Commands(t_all[m], data[m][:, cmd_cols], kind=kind, topic="columns cmd_*")
    if all(c in header for c in _ODOM):
        cols = [header.index(c) for c in _ODOM]
        m = rows_with(cols)
        check_monotonic(t_all[m], file=file, topic="columns pos_*/quat_*/vel_*/rate_*")
        d = data[m][:, cols]
        log.odometry = Odometry(t_all[m], d[:, 0:3], d[:, 3:7], d[:, 7:10], d[:, 10:13], topic="odometry columns")
    motor = sorted((int(h[6:]), i) for i, h in enumerate(header) if h.startswith("motor_") and h[6:].isdigit())
    if motor:
        cols = [i for _, i in motor]
        m = rows_with(cols)
        check_monotonic(t_all[m], file=file, topic="columns motor_*")
        kind = "thrust_rates" if robot.control.mode == "thrust_rates" else "motor"
        log.motor_command = Commands(t_all[m], data[m][:, cols], kind=kind, topic="columns motor_*")
    if log.joint_states is None and log.odometry is None:
        raise LogError(f"{file}: no state columns (expected q_<joint> or pos_*/quat_*/vel_*/rate_* columns)")
    return log


def write_csv(path: str | os.PathLike[str], log: HardwareLog, robot: RobotDescription) -> Path:
    """Write the joint states and joint commands of ``log`` in the layout above (ROS joint names), atomically."""
    js, cmd = log.joint_states, log.command
    names = list(robot.ros2.joint_names)
    header = ["t"]
    blocks: list[tuple[np.ndarray, np.ndarray, int]] = []  # (times, values, first column)
    if js is not None:
        for prefix, arr in (("q_", js.position), ("qd_", js.velocity), ("tau_", js.effort)):
            if prefix == "q_" or not np.isnan(arr).all():
                blocks.append((js.t, arr, len(header)))
                header += [prefix + n for n in names]
    if cmd is not None:
        blocks.append((cmd.t, cmd.values, len(header)))
        header += ["cmd_" + n for n in names]
    return write_stamped_table(path, header, blocks)


def write_stamped_table(path: str | os.PathLike[str], header: list[str],
                        blocks: list[tuple[np.ndarray, np.ndarray, int]]) -> Path:
    """Write stamped streams as one CSV, atomically: column ``t`` holds the union of all stamps (s).

    :param blocks: ``(times (N,), values (N, k), first column)``; each stream fills its ``k`` columns at
        its own stamps, other cells stay empty
    """
    times = np.unique(np.concatenate([b[0] for b in blocks])) if blocks else np.zeros(0)
    table = np.full((times.size, len(header)), np.nan)
    table[:, 0] = times
    for t, arr, col in blocks:
        idx = np.searchsorted(times, t)
        table[idx, col:col + arr.shape[1]] = arr
    path = Path(path)
    with atomic_open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for row in table:
            w.writerow(["" if np.isnan(v) else repr(float(v)) for v in row])
    return path


def read_log(path: str | os.PathLike[str], robot: RobotDescription, **bag_kwargs: object) -> HardwareLog:
    """Read a ``.csv`` file with :func:`read_csv`, anything else as a rosbag2 with :func:`~sim2real.sysid.bagio.read_bag`."""
    if str(path).lower().endswith(".csv"):
        return read_csv(path, robot)
    from sim2real.sysid.bagio import read_bag

    return read_bag(path, robot, **bag_kwargs)  # type: ignore[arg-type]
