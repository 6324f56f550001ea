"""Argument types shared by every ``sim2real`` sub-command (argparse ``type=`` callables).

Each returns the parsed value or raises :class:`argparse.ArgumentTypeError`, which the
command-line parser reports as one line, exit code 2, before any work starts.
"""

from __future__ import annotations

import argparse
import math
from typing import Callable, NoReturn

#: numpy's legacy seeding (used by SB3's ``set_random_seed``) takes seeds in ``[0, 2**32)``.
MAX_SEED = 2**32 - 1


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def seed(text: str) -> int:
    """A random seed: an integer in ``0 .. 2**32 - 1``."""
    value = _int(text)
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"expected an integer in 0..{MAX_SEED}, got {text!r}")
    return value


def seed_list(text: str) -> list[int]:
    """Comma-separated distinct seeds (``0,1,2``), each in ``0 .. 2**32 - 1``."""
    parts = [p.strip() for p in text.split(",")]
    if not all(parts):
        raise argparse.ArgumentTypeError(f"expected comma-separated seeds such as 0,1,2, got {text!r}")
    seeds = [seed(p) for p in parts]
    if len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"a seed is given twice in {text!r}")
    return seeds


def positive_int(text: str) -> int:
    """An integer >= 1 (counts: workers, steps, episodes, horizons)."""
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def finite_float(text: str) -> float:
    """Any finite number (no nan, no inf)."""
    return _float(text)


def positive_float(text: str) -> float:
    """A finite number > 0 (rates in Hz, durations in s)."""
    value = _float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def bounded_float(low: float, high: float, what: str = "a number") -> Callable[[str], float]:
    """A finite number in ``(low, high]``, e.g. a log duration with a memory-safe ceiling."""

    def parse(text: str) -> float:
        value = _float(text)
        if not low < value <= high:
            raise argparse.ArgumentTypeError(f"expected {what} in ({low:g}, {high:g}], got {text!r}")
        return value

    parse.__name__ = "number"
    return parse


class OneLineParser(argparse.ArgumentParser):
    """An :class:`argparse.ArgumentParser` whose usage errors are one line (no usage block), exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")
