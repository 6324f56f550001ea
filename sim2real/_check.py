"""The one configuration checker of the package: type and value checks that raise a
:class:`~sim2real.errors.ConfigError` subclass naming the file and the key path, printed by the CLI
as one line ``file: key.path: expected ...``.

Robot files raise :class:`~sim2real.errors.RobotError`, profiles
:class:`~sim2real.errors.ProfileError`, run / adapt / deployment configs
:class:`~sim2real.errors.ConfigError`: pass the class as ``error``. Key paths are tuples of
mapping keys (str) and list indices (int), rendered by :func:`~sim2real.errors.format_key_path`.

Depends on the standard library only: the deployment install imports it without the
simulation stack.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, NoReturn, Sequence

from sim2real.errors import ConfigError


class Checker:
    """Checks of values read from ``file`` (``None``: not from a file) raising ``error``."""

    def __init__(self, file: str | None, error: type[ConfigError] = ConfigError) -> None:
        self.file = None if file is None else str(file)
        self.error = error

    def fail(self, path: Sequence[Any], msg: str) -> NoReturn:
        """Raise ``error`` with ``msg`` at key ``path``."""
        raise self.error(msg, file=self.file, path=tuple(path))

    def expect(self, cond: Any, path: Sequence[Any], msg: str) -> None:
        """Raise ``error`` with ``msg`` at ``path`` unless ``cond`` is true."""
        if not cond:
            self.fail(path, msg)

    def mapping(self, value: Any, path: Sequence[Any], allowed: set[str] | None = None) -> dict:
        """A mapping with string keys (only ``allowed`` ones, when given); a plain-dict copy."""
        if not isinstance(value, Mapping):
            self.fail(path, f"expected a mapping, got {value!r}")
        for key in value:
            if not isinstance(key, str):
                self.fail(path, f"expected string keys, got {key!r}")
            if allowed is not None and key not in allowed:
                self.fail((*path, key), f"unknown key (expected one of: {', '.join(sorted(allowed))})")
        return dict(value)

    def section(self, value: Any, path: Sequence[Any], allowed: set[str] | None = None) -> dict:
        """A mapping (only ``allowed`` keys, when given), worded for robot-description files:
        ``expected a mapping, got list`` / ``unknown key 'x'; expected one of [...]``."""
        self.expect(isinstance(value, dict), path, f"expected a mapping, got {type(value).__name__}")
        if allowed is not None:
            for key in value:
                self.expect(key in allowed, (*path, key), f"unknown key {key!r}; expected one of {sorted(allowed)}")
        return value

    def integer(self, value: Any, path: Sequence[Any], minimum: int | None = None) -> int:
        """An integer (a float with an integer value is accepted), ``>= minimum`` when given."""
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                self.fail(path, f"expected an integer, got {value!r}")
        if minimum is not None and value < minimum:
            self.fail(path, f"expected an integer >= {minimum}, got {value}")
        return int(value)

    def number(self, value: Any, path: Sequence[Any], low: float | None = None, high: float | None = None) -> float:
        """A finite number (not a boolean) in ``[low, high]`` (either bound optional)."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(path, f"expected a number, got {value!r}")
        if not math.isfinite(value):
            self.fail(path, f"expected a finite number, got {value}")
        if (low is not None and value < low) or (high is not None and value > high):
            self.fail(path, f"expected a number in [{low}, {high}], got {value}")
        return float(value)

    def boolean(self, value: Any, path: Sequence[Any]) -> bool:
        """``true`` or ``false`` (not 0 / 1)."""
        if not isinstance(value, bool):
            self.fail(path, f"expected true or false, got {value!r}")
        return value

    def string(self, value: Any, path: Sequence[Any], choices: Sequence[str] | None = None) -> str:
        """A non-empty string, one of ``choices`` when given."""
        if not isinstance(value, str) or not value:
            self.fail(path, f"expected a non-empty string, got {value!r}")
        if choices is not None and value not in choices:
            self.fail(path, f"expected one of {', '.join(choices)}, got {value!r}")
        return value
