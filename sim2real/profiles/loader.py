"""Loading profiles: files, shipped names, dicts; ``extends`` inheritance; the :class:`Profile` object."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping

import numpy as np
import yaml

from sim2real._io import atomic_write_text, data_dir, read_yaml_file
from sim2real.errors import ProfileError, RobotError
from sim2real.profiles.distributions import _describe
from sim2real.profiles.entry import Entry, Sample
from sim2real.profiles.schema import check_entry_robot, parse_entry

if TYPE_CHECKING:
    from sim2real.robots import RobotDescription

TOP_KEYS = ("description", "extends", "robot", "params")
_DIST_PARAM_KEYS = ("low", "high", "mean", "std", "value")


@dataclass(frozen=True, eq=False)
class Profile:
    """A resolved (``extends`` applied) and validated randomization profile.

    Attributes:
        entries: entry name -> :class:`Entry`, in file order (parents' entries first).
        description: free text.
        source: the file it was loaded from, or ``None``.
        robot: robot name the profile is for (``robot:`` key or the robot it was loaded with).
        robot_description: the robot it was validated against, if any (default for sampling).
    """

    entries: dict[str, Entry]
    description: str = ""
    source: Path | None = None
    robot: str | None = None
    robot_description: "RobotDescription | None" = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return self.source.stem if self.source is not None else "<dict>"

    def due(self, when: str) -> list[Entry]:
        """Entries with that ``when`` (``startup`` | ``reset`` | ``interval``), in profile order."""
        return [e for e in self.entries.values() if e.when == when]

    def sample(self, rng: np.random.Generator, robot: "RobotDescription | None" = None,
               when: str | Iterable[str] = ("startup", "reset")) -> dict[str, Sample]:
        """Draw every entry whose ``when`` is in ``when``, in profile order (reproducible per seed).

        ``robot`` defaults to the robot the profile was validated against.
        """
        whens = (when,) if isinstance(when, str) else tuple(when)
        robot = robot if robot is not None else self.robot_description
        out = {}
        for name, e in self.entries.items():
            if e.when in whens:
                try:
                    out[name] = e.sample(rng, robot)
                except ProfileError as exc:
                    if exc.file or self.source is None:
                        raise
                    raise ProfileError(exc.detail, file=str(self.source), path=exc.key_path) from None
        return out

    def replace_entry(self, name: str, entry: Entry | None) -> "Profile":
        """A new profile with entry ``name`` set to ``entry`` (added if new; ``None`` removes it)."""
        entries = dict(self.entries)
        if entry is None:
            entries.pop(name, None)
        else:
            entry = dataclasses.replace(entry, name=name) if entry.name != name else entry
            if self.robot_description is not None:
                check_entry_robot(entry, self.robot_description, lambda key: None)
            entries[name] = entry
        return dataclasses.replace(self, entries=entries)

    def to_dict(self) -> dict[str, Any]:
        """The resolved profile as a YAML-able dict (no ``extends``)."""
        out: dict[str, Any] = {"description": self.description}
        if self.robot is not None:
            out["robot"] = self.robot
        out["params"] = {name: e.to_dict() for name, e in self.entries.items()}
        return out

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None, width=100)

    def save(self, path: str | Path) -> None:
        """Write the resolved profile to ``path`` atomically."""
        atomic_write_text(path, self.to_yaml())


# ---------------------------------------------------------------------------------------


def profiles_dir() -> Path:
    return data_dir("randomization_profiles")


def shipped_profiles() -> list[str]:
    """Names (file stems) of the profiles in ``randomization_profiles/``."""
    root = profiles_dir()
    if not root.is_dir():
        return []
    return sorted(p.stem for p in root.glob("*.yaml"))


def describe_shipped() -> list[tuple[str, str, str | None]]:
    """``(name, description, robot)`` of every shipped profile (``extends`` resolved, robots not loaded).

    A profile that fails to parse gets the description ``"INVALID: <error>"``.
    """
    out = []
    for name in shipped_profiles():
        file = profiles_dir() / f"{name}.yaml"
        try:
            res = _resolve(read_yaml_mapping(file), file, (file.resolve(),))
            out.append((name, res.description, res.robot))
        except ProfileError as exc:
            out.append((name, f"INVALID: {exc}", None))
    return out


def is_profile_path(ref: str | Path) -> bool:
    """The one rule for profile arguments: a reference is a file path when it is a :class:`~pathlib.Path`,
    contains a path separator or ends in ``.yaml`` / ``.yml``; any other string is the name of a
    shipped profile, so a file in the working directory never shadows a shipped name."""
    if isinstance(ref, Path):
        return True
    seps = {"/", os.sep} | ({os.altsep} if os.altsep else set())
    return any(sep in ref for sep in seps) or ref.endswith((".yaml", ".yml"))


def find_profile(name: str | Path, relative_to: Path | None = None, *, referrer: str | None = None) -> Path:
    """Resolve a profile reference (see :func:`is_profile_path`): a path, relative to ``relative_to``
    (default: the working directory), or the name of a profile in ``randomization_profiles/``.

    ``referrer`` is the file holding the reference (for the error message of ``extends``).
    """
    where = ("extends",) if referrer else ()
    base = relative_to if relative_to is not None else Path.cwd()
    if is_profile_path(name):
        ref = Path(name)
        cand = ref if ref.is_absolute() else base / ref
        if cand.is_file():
            return cand
        what = "a folder" if cand.is_dir() else "no such file"
        hint = f"shipped profiles are named without .yaml: {', '.join(shipped_profiles()) or 'none found'}"
        raise ProfileError(f"profile {str(name)!r} not found: {what} ({cand}); {hint}", file=referrer, path=where)
    shipped = profiles_dir() / f"{name}.yaml"
    if shipped.is_file():
        return shipped
    known = ", ".join(shipped_profiles()) or "none found"
    hint = next((f"; to use the file {c}, give it as ./{c}" for c in (name, f"{name}.yaml") if (base / c).exists()), "")
    raise ProfileError(f"profile {name!r} not found: not a shipped profile (shipped: {known}); "
                       f"a file path contains '/' or ends in .yaml{hint}", file=referrer, path=where)


def read_yaml_mapping(file: Path) -> dict[str, Any]:
    """Read a profile file; errors name the file (YAML syntax with line/column, non-mapping content)."""
    raw = read_yaml_file(file, ProfileError, what="profile")
    if not isinstance(raw, dict):
        got = "an empty file" if raw is None else _describe(raw) if not isinstance(raw, list) else "a list"
        raise ProfileError(f"expected a mapping with keys {list(TOP_KEYS)}, got {got}", file=str(file))
    fmt = raw.get("format")
    sidecar = isinstance(fmt, str) and fmt.startswith("sim2real-policy")
    if sidecar or (len(raw) > 1 and not any(key in TOP_KEYS for key in raw)):  # (one unknown key: likely a typo)
        what = (f"an exported policy's sidecar ({fmt})" if sidecar
                else f"a YAML file with keys {', '.join(map(str, list(raw)[:5]))}")
        raise ProfileError(f"not a randomization profile: {what}; a profile has the keys {', '.join(TOP_KEYS)}",
                           file=str(file))
    return raw


@dataclass
class _Resolved:
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    key_origin: dict[str, dict[str, str | None]] = field(default_factory=dict)
    entry_origin: dict[str, str | None] = field(default_factory=dict)
    description: str = ""
    robot: str | None = None
    robot_origin: str | None = None


def _resolve(raw: Mapping[str, Any], file: Path | None, stack: tuple[Path, ...]) -> _Resolved:
    fname = str(file) if file is not None else None

    def fail(message: str, *path: Any) -> None:
        raise ProfileError(message, file=fname, path=path)

    for key in raw:
        if key not in TOP_KEYS:
            fail(f"unknown top-level key; expected one of {list(TOP_KEYS)}", key)
    for key in ("description", "extends", "robot"):
        if raw.get(key) is not None and not isinstance(raw[key], str):
            fail(f"expected a string, got {_describe(raw[key])}", key)
    params = raw.get("params")
    if params is None:
        params = {}
    if not isinstance(params, dict):
        fail(f"expected a mapping of entry name -> entry, got {_describe(params)}", "params")

    out = _Resolved()
    if raw.get("extends"):
        parent = find_profile(raw["extends"], file.parent if file is not None else None, referrer=fname)
        key = parent.resolve()
        if key in stack:
            chain = " -> ".join(p.name for p in (*stack, key))
            fail(f"extends cycle: {chain}", "extends")
        out = _resolve(read_yaml_mapping(parent), parent, (*stack, key))

    if raw.get("description") is not None:
        out.description = raw["description"]
    if raw.get("robot") is not None:
        out.robot, out.robot_origin = raw["robot"], fname

    for name, entry in params.items():
        if not isinstance(name, str):
            fail(f"entry names must be strings, got {_describe(name)}", "params", name)
        if entry is None:
            if name not in out.params:
                why = "no parent profile defines it" if raw.get("extends") else "this profile has no 'extends'"
                fail(f"null removes an inherited entry, but {why}", "params", name)
            del out.params[name]
            del out.key_origin[name]
            del out.entry_origin[name]
            continue
        if not isinstance(entry, dict):
            fail(f"expected a mapping (an entry), got {_describe(entry)}", "params", name)
        merged = dict(out.params.get(name, {}))
        origin = dict(out.key_origin.get(name, {}))
        if "distribution" in entry and entry["distribution"] != merged.get("distribution"):
            # a new distribution kind does not inherit the parent's distribution parameters
            for k in _DIST_PARAM_KEYS:
                merged.pop(k, None)
                origin.pop(k, None)
        if entry.get("when") is not None and entry["when"] != "interval":
            merged.pop("interval", None)
            origin.pop("interval", None)
        for k, v in entry.items():
            if v is None:
                merged.pop(k, None)
                origin.pop(k, None)
            else:
                merged[k] = v
                origin[k] = fname
        out.params[name] = merged
        out.key_origin[name] = origin
        out.entry_origin[name] = fname
    return out


def _as_robot(robot: "RobotDescription | str | Path") -> "RobotDescription":
    if isinstance(robot, (str, Path)):
        from sim2real.robots import load_robot

        return load_robot(robot)
    return robot


def load_profile(src: "str | Path | Mapping[str, Any] | Profile",
                 robot: "RobotDescription | str | None" = None) -> Profile:
    """Load, resolve (``extends``) and validate a profile.

    Args:
        src: a file path or a shipped profile name (``"peng2018_arm"``; see :func:`is_profile_path`),
            a dict with the file's structure, or a :class:`Profile` (re-checked against ``robot``).
        robot: a robot (description or name) whose link/joint/model-parameter names every
            target must match. Defaults to the profile's ``robot:`` key, if any.

    Raises:
        ProfileError: naming the file, the key path and what was expected.
    """
    if isinstance(src, Profile):
        profile = src
        key_file: Any = lambda name: (lambda key: str(src.source) if src.source else None)
        robot_origin = str(src.source) if src.source else None
    else:
        if isinstance(src, Mapping):
            file = None
            raw = dict(src)
            stack: tuple[Path, ...] = ()
        elif isinstance(src, (str, Path)):
            file = find_profile(src)
            raw = read_yaml_mapping(file)
            stack = (file.resolve(),)
        else:
            raise ProfileError(f"expected a profile path, name, dict or Profile, got {type(src).__name__}")
        res = _resolve(raw, file, stack)
        entries = {}
        for name, entry_raw in res.params.items():
            origins = res.key_origin[name]
            own = res.entry_origin[name]
            entries[name] = parse_entry(name, entry_raw, lambda key, o=origins, f=own: o.get(key, f))
        profile = Profile(entries=entries, description=res.description, source=file, robot=res.robot)
        key_file = lambda name, r=res: (lambda key: r.key_origin[name].get(key, r.entry_origin[name]))
        robot_origin = res.robot_origin

    if robot is None and profile.robot is not None and profile.robot_description is None:
        try:
            robot = _as_robot(profile.robot)
        except RobotError as exc:
            raise ProfileError(exc.detail, file=robot_origin, path=("robot",)) from None
    if robot is None:
        return profile
    desc = _as_robot(robot)
    if profile.robot is not None and profile.robot != desc.name:
        raise ProfileError(f"the profile is for robot {profile.robot!r}, but was loaded for {desc.name!r}",
                           file=robot_origin, path=("robot",))
    for name, entry in profile.entries.items():
        check_entry_robot(entry, desc, key_file(name))
    return dataclasses.replace(profile, robot_description=desc)
