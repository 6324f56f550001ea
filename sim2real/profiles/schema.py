"""Validation of profile entries: raw YAML mapping -> :class:`Entry`, and target names vs a robot.

Every error is a :class:`~sim2real.errors.ProfileError` naming the file the offending key
came from (entries merged through ``extends`` keep the origin of each key), the key path
(``params.<entry>.<key>``) and what was expected.
"""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, Any, Callable, Mapping, NoReturn, Sequence

import numpy as np

from sim2real._check import Checker
from sim2real.errors import ProfileError
from sim2real.profiles.distributions import _compact, _describe, _is_number, parse_distribution
from sim2real.profiles.entry import Entry, Interval, _is_numeric, all_targets, valid_targets
from sim2real.profiles.kinds import JOINT, LINK, LINK_OR_FLOOR, MODEL_PARAM, OPERATIONS, PARAM_KINDS, WHENS

if TYPE_CHECKING:
    from sim2real.robots import RobotDescription

ENTRY_KEYS = ("param", "targets", "distribution", "low", "high", "mean", "std", "value",
              "operation", "when", "interval", "shared")

#: ``file_of(key)`` -> the file a key of the entry came from (``None`` -> the entry's own file)
FileOf = Callable[[Any], "str | None"]


def _suggest(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


class _EntryErrors:
    """Raises errors located at ``params.<name>.<key>...`` in the right file."""

    def __init__(self, name: str, file_of: FileOf) -> None:
        self.name = name
        self.file_of = file_of

    def at(self, key: Any, message: str, sub: Sequence[Any] = ()) -> NoReturn:
        path: tuple[Any, ...] = ("params", self.name)
        if key is not None:
            path += (key, *sub)
        Checker(self.file_of(key), ProfileError).fail(path, message)

    def under(self, key: str) -> Callable[..., NoReturn]:
        """A ``fail(message, subpath=())`` for validators of the value of ``key``."""
        return lambda message, sub=(): self.at(key, message, tuple(sub))


def parse_entry(name: str, raw: Any, file_of: FileOf) -> Entry:
    """Validate one merged entry mapping and build its :class:`Entry`."""
    err = _EntryErrors(name, file_of)
    if not isinstance(raw, Mapping):
        err.at(None, f"expected a mapping (an entry), got {_describe(raw)}")

    param = raw.get("param", name)
    if not isinstance(param, str) or param not in PARAM_KINDS:
        where = "param" if "param" in raw else None
        hint = "" if where else " (no 'param' key, so the entry name is used)"
        sug = _suggest(param, list(PARAM_KINDS)) if isinstance(param, str) else ""
        err.at(where, f"unknown parameter kind {_describe(param)}{hint}{sug}; expected one of {list(PARAM_KINDS)}")
    spec = PARAM_KINDS[param]

    allowed = list(ENTRY_KEYS) + list(spec.options)
    for key in raw:
        if key not in allowed:
            sug = _suggest(str(key), allowed)
            err.at(key, f"unknown key for a {param} entry{sug}; expected one of {allowed}")

    # targets
    targets: tuple[str, ...] | None
    raw_targets = raw.get("targets")
    if spec.is_global:
        if raw_targets is not None:
            err.at("targets", f"{param} is a global parameter and takes no targets")
        targets = None
    elif raw_targets is None:
        targets = spec.default_targets
    elif raw_targets == "all":
        targets = None
    elif isinstance(raw_targets, str):
        targets = (raw_targets,)
    elif isinstance(raw_targets, list) and raw_targets:
        for i, t in enumerate(raw_targets):
            if not isinstance(t, str):
                err.at("targets", f"expected a name, got {_describe(t)}", (i,))
        if len(set(raw_targets)) != len(raw_targets):
            dup = next(t for t in raw_targets if raw_targets.count(t) > 1)
            err.at("targets", f"target {dup!r} is listed twice")
        targets = tuple(raw_targets)
    else:
        err.at("targets", f"expected 'all' or a non-empty list of {_target_word(spec.target)} names, "
                          f"got {_describe(raw_targets)}")

    dist = parse_distribution(raw, spec.dims, lambda message, sub=(): err.at(sub[0] if sub else "distribution",
                                                                              message, tuple(sub[1:])))

    operation = raw.get("operation", spec.default_op)
    if operation not in OPERATIONS:
        err.at("operation", f"expected one of {list(OPERATIONS)}, got {_describe(operation)}")

    when = raw.get("when", "reset")
    if when not in WHENS:
        err.at("when", f"expected one of {list(WHENS)}, got {_describe(when)}")
    if spec.requires_interval and when != "interval":
        err.at("when", f"a {param} entry needs 'when: interval' (with an 'interval' key), got {_describe(when)}")
    interval = None
    if when == "interval":
        if raw.get("interval") is None:
            err.at("interval", "missing; 'when: interval' needs interval: {steps: N} or {seconds: T}")
        interval = parse_interval(raw["interval"], err.under("interval"))
    elif raw.get("interval") is not None:
        err.at("interval", f"given, but 'when' is {when!r}; an interval needs 'when: interval'")

    shared = raw.get("shared", False)
    if not isinstance(shared, bool):
        err.at("shared", f"expected true or false, got {_describe(shared)}")
    if shared and spec.is_global:
        err.at("shared", f"{param} is a global parameter (one value per world); 'shared' needs a kind with targets")

    options = {}
    for key, opt in spec.options.items():
        value = raw.get(key)
        options[key] = opt.default if value is None else opt.parse(value, err.under(key))

    _check_range(err, raw, spec.name, operation, dist, spec.value_range(operation))

    return Entry(name=name, param=param, targets=targets, distribution=dist, operation=operation, when=when,
                 interval=interval, shared=shared, options=options, dim=dist.dim)


def _check_range(err: _EntryErrors, raw: Mapping[str, Any], param: str, operation: str, dist: Any,
                 valid: tuple[float, float]) -> None:
    vmin, vmax = valid
    lo, hi = dist.support()
    if operation == "scale":
        what = "a scale factor must be >= 0" if np.any(lo < vmin) else f"a scale factor must be <= {vmax:g}"
    elif vmax < np.inf:
        what = f"{param} with operation {operation} must lie in [{vmin:g}, {vmax:g}]"
    else:
        what = f"{param} is non-negative, so with operation abs the draw must be >= 0"
    if np.any(lo < vmin):
        if dist.kind == "constant":
            err.at("value", f"{what}, got {_compact(dist.params['value'])}")
        if dist.kind == "gaussian" and "low" not in dist.params:
            err.at("low", f"missing; {what}: give the gaussian a low >= 0 (truncation)")
        err.at("low", f"{what}, got low {_compact(lo)}")
    if np.any(hi > vmax):
        if dist.kind == "constant":
            err.at("value", f"{what}, got {_compact(dist.params['value'])}")
        if dist.kind == "gaussian" and "high" not in dist.params:
            err.at("high", f"missing; {what}: give the gaussian a high <= {vmax:g} (truncation)")
        err.at("high", f"{what}, got high {_compact(hi)}")


def parse_interval(raw: Any, fail: Callable[..., NoReturn]) -> Interval:
    """``{steps: N}`` or ``{seconds: T}``, ``N``/``T`` a number or ``[low, high]``."""
    if not isinstance(raw, Mapping) or len(raw) != 1:
        fail(f"expected exactly one of {{steps: N}} or {{seconds: T}}, got {_describe(raw)}")
    unit, value = next(iter(raw.items()))
    if unit not in ("steps", "seconds"):
        fail("unknown key; expected 'steps' or 'seconds'", (unit,))
    pair = value if isinstance(value, list) else [value, value]
    if unit == "steps":
        ok = len(pair) == 2 and all(isinstance(x, int) and not isinstance(x, bool) and x >= 1 for x in pair)
        expect = "an integer >= 1 or [low, high] integers >= 1"
    else:
        ok = len(pair) == 2 and all(_is_number(x) and x > 0 for x in pair)
        expect = "a number > 0 or [low, high] numbers > 0"
    if not ok:
        fail(f"expected {expect}, got {_describe(value)}", (unit,))
    if pair[0] > pair[1]:
        fail(f"inverted bounds: low ({pair[0]}) must be <= high ({pair[1]})", (unit,))
    return Interval(unit=unit, low=float(pair[0]), high=float(pair[1]))


def _target_word(target: str | None) -> str:
    return {LINK: "link", LINK_OR_FLOOR: "link", JOINT: "joint", MODEL_PARAM: "model parameter"}.get(target or "", "")


def check_entry_robot(entry: Entry, robot: "RobotDescription", file_of: FileOf) -> None:
    """Check every target name of ``entry`` exists on ``robot`` (and ``all`` matches something)."""
    spec = entry.kind
    if spec.is_global:
        return
    err = _EntryErrors(entry.name, file_of)
    valid = valid_targets(spec, robot)
    word = _target_word(spec.target)
    names = list(entry.targets) if entry.targets is not None else ["all"]
    for i, t in enumerate(names):
        sub = (i,) if isinstance(entry.targets, tuple) and len(entry.targets) > 0 else ()
        if t == "all":
            if not all_targets(spec, robot):
                err.at("targets", f"'all' matches no {word} of robot {robot.name!r}", sub)
            continue
        if t not in valid:
            extra = ""
            if spec.target == LINK and t == "floor":
                extra = f" ({entry.param} cannot target the floor)"
            err.at("targets", f"unknown {word} {t!r} for robot {robot.name!r}{extra}{_suggest(t, valid)}; "
                              f"expected one of {valid}", sub)
        if spec.target == MODEL_PARAM:
            if not _is_numeric(robot.model_params[t]):
                err.at("targets", f"model parameter {t!r} of robot {robot.name!r} is not a number "
                                  f"(got {_describe(robot.model_params[t])})", sub)
