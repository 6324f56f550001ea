"""System identification: hardware-log ingestion, offline calibration, online identification (UP-OSI, RMA).

* Logs: :func:`read_bag` / :func:`write_bag` (rosbag2 sqlite3/MCAP through ``rosbags``, no ROS
  install), :func:`read_csv` / :func:`write_csv`, :func:`read_log` (either), :func:`align`
  (control-rate resampling, gap detection) → :class:`HardwareLog`, :class:`Segment`.
* Simulated logs with ground truth: :mod:`sim2real.sysid.record` (``sim2real record``).
* Offline calibration: :mod:`sim2real.sysid.calibrate` (``sim2real calibrate``), outputs in
  :mod:`sim2real.sysid.report`.
* UP-OSI: :mod:`sim2real.sysid.upenv` (μ in the observation), :mod:`sim2real.sysid.osi`; RMA:
  :mod:`sim2real.sysid.rma`; their shared history windows: :mod:`sim2real.sysid.windows`.

See ``docs/sysid.md``. Heavy modules (PyBullet, torch) are imported only where used.
"""

from sim2real.sysid.align import Segment, align, find_gaps
from sim2real.sysid.bagio import read_bag, write_bag
from sim2real.sysid.csvlog import read_csv, read_log, write_csv
from sim2real.sysid.logs import Commands, HardwareLog, Imu, JointStates, Odometry

__all__ = [
    "Commands", "HardwareLog", "Imu", "JointStates", "Odometry", "Segment", "align", "find_gaps", "read_bag",
    "read_csv", "read_log", "write_bag", "write_csv",
]
