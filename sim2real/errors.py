"""Exception types of the toolkit.

Every error a user can cause (bad file, unknown name, missing checkpoint) is raised
as a :class:`Sim2RealError` subclass; the CLI prints it as one line, no traceback.
"""

from __future__ import annotations

from typing import Any, Sequence


def format_key_path(path: Sequence[Any]) -> str:
    """Render a key path like ``params.link_mass.low`` or ``joints[2].lower``; a key that is empty or holds
    control characters (a line break would split the one-line error) is shown quoted, ``params.'\\r'``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            text = str(part)
            out += ("." if out else "") + (text if text.isprintable() and text else repr(text))
    return out or "<root>"


class Sim2RealError(Exception):
    """Base class of every error the toolkit raises on purpose."""


class ConfigError(Sim2RealError):
    """A configuration file (profile, robot, run config, params) is invalid.

    The message names the file, the key path and what was expected, e.g.
    ``peng.yaml: params.link_mass.low: expected a number, got 'heavy'``.
    """

    def __init__(self, message: str, *, file: str | None = None, path: Sequence[Any] = ()) -> None:
        self.file = file
        self.key_path = tuple(path)
        where = []
        if file:
            where.append(str(file))
        if path:
            where.append(format_key_path(path))
        self.detail = message
        super().__init__(": ".join(where + [message]))


class ProfileError(ConfigError):
    """A randomization profile is invalid."""


class RobotError(ConfigError):
    """A robot description is invalid or the robot is unknown."""


class EnvError(Sim2RealError):
    """An environment was asked for something it cannot do (bad id, NaN action, ...)."""


class CheckpointError(Sim2RealError):
    """A checkpoint or exported policy is missing or unreadable."""


class LogError(Sim2RealError):
    """A hardware log (rosbag2, CSV) is missing, truncated, corrupt or inconsistent."""


class DatasetError(Sim2RealError):
    """An image dataset (folder, labels file, bag topic) is missing, empty or malformed."""


class TransportError(Sim2RealError):
    """A ROS 2 transport could not be created or used."""
