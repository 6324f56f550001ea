"""``sim2real profile``: validate, sample, show and list randomization profiles.

    sim2real profile validate FILE... [--robot NAME]
    sim2real profile sample FILE [--robot NAME] [--seed N] [--when startup,reset] [--json]
    sim2real profile show FILE [--robot NAME]
    sim2real profile list
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from sim2real.cli import _args


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "profile", help="validate, sample, show and list randomization profiles",
        description="Work with randomization profiles (randomization_profiles/*.yaml or any path).",
    )
    sub = parser.add_subparsers(dest="profile_command", metavar="ACTION")

    p = sub.add_parser("validate", help="check profiles; prints 'OK FILE' per valid file")
    p.add_argument("files", nargs="+", metavar="FILE", help="profile file or shipped profile name")
    p.add_argument("--robot", help="robot name or robot.yaml path to check target names against "
                                   "(default: the profile's 'robot:' key)")
    p.set_defaults(func=_validate)

    p = sub.add_parser("sample", help="draw one set of values and show them with the nominal and resulting values")
    p.add_argument("file", metavar="FILE", help="profile file or shipped profile name")
    p.add_argument("--robot", help="robot name or robot.yaml path (default: the profile's 'robot:' key)")
    p.add_argument("--seed", type=_args.seed, default=0, help="seed of the numpy generator (default 0)")
    p.add_argument("--when", default="startup,reset",
                   help="comma-separated 'when' values to draw (default startup,reset; add interval)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=_sample)

    p = sub.add_parser("show", help="print the resolved profile (extends applied, defaults filled) as YAML")
    p.add_argument("file", metavar="FILE", help="profile file or shipped profile name")
    p.add_argument("--robot", help="also check target names against this robot")
    p.set_defaults(func=_show)

    p = sub.add_parser("list", help="list the shipped profiles with their descriptions")
    p.set_defaults(func=_list)

    parser.set_defaults(func=lambda args: (parser.print_help(), 1)[1])


def _validate(args: argparse.Namespace) -> int:
    from sim2real.errors import Sim2RealError
    from sim2real.profiles import load_profile

    failed = 0
    for file in args.files:
        try:
            load_profile(file, robot=args.robot)
        except Sim2RealError as exc:
            failed += 1
            print(f"sim2real profile validate: error: {exc}", file=sys.stderr)
        else:
            print(f"OK {file}")
    return 2 if failed else 0


def _parse_when(text: str) -> tuple[str, ...]:
    from sim2real.errors import ConfigError
    from sim2real.profiles import WHENS

    whens = tuple(w.strip() for w in text.split(",") if w.strip())
    for w in whens:
        if w not in WHENS:
            raise ConfigError(f"--when: expected a comma-separated list of {list(WHENS)}, got {w!r}")
    return whens


def _sample(args: argparse.Namespace) -> int:
    import numpy as np

    from sim2real.errors import ProfileError
    from sim2real.profiles import load_profile
    from sim2real.profiles.nominal import nominal_value

    whens = _parse_when(args.when)
    profile = load_profile(args.file, robot=args.robot)
    robot = profile.robot_description
    if robot is None and any(not e.kind.is_global for e in profile.entries.values()):
        raise ProfileError("the profile targets robot parts; give --robot NAME (it has no 'robot:' key)",
                           file=str(profile.source) if profile.source else args.file)
    samples = profile.sample(np.random.default_rng(args.seed), robot, when=whens)

    def plain(x: np.ndarray | None) -> Any:
        if x is None:
            return None
        return float(x[0]) if x.shape == (1,) else [float(v) for v in x]

    report: dict[str, Any] = {}
    for name, s in samples.items():
        e = s.entry
        rows: dict[str, Any] = {}
        for target, draw in zip(s.targets or ("value",), s.values):
            nominal = nominal_value(robot, e.param, None if not s.targets else target)
            result = e.apply_op(nominal, draw) if (nominal is not None or e.operation == "abs") else None
            rows[target] = {"draw": plain(draw), "nominal": plain(nominal), "result": plain(result)}
        report[name] = {"param": e.param, "operation": e.operation, "when": e.when, "values": rows}

    if args.json:
        print(json.dumps({"profile": str(profile.source or args.file), "robot": robot.name if robot else None,
                          "seed": args.seed, "samples": report}, indent=2))
        return 0
    header = ("entry", "param", "target", "op", "draw", "nominal", "result")
    lines = [header]
    for name, item in report.items():
        for target, v in item["values"].items():
            lines.append((name, item["param"], target, item["operation"], _fmt(v["draw"]), _fmt(v["nominal"]),
                          _fmt(v["result"])))
    if len(lines) == 1:
        print(f"(no entries due at {', '.join(whens)})")
        return 0
    widths = [max(len(str(row[i])) for row in lines) for i in range(len(header))]
    for row in lines:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())
    return 0


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, list):
        return "[" + ", ".join(f"{x:.4g}" for x in v) + "]"
    return f"{v:.4g}"


def _show(args: argparse.Namespace) -> int:
    from sim2real.profiles import load_profile

    profile = load_profile(args.file, robot=args.robot)
    sys.stdout.write(profile.to_yaml())
    return 0


def _list(args: argparse.Namespace) -> int:
    from sim2real.profiles.loader import describe_shipped, profiles_dir

    items = describe_shipped()
    if not items:
        print(f"no profiles found in {profiles_dir()}")
        return 1
    width = max(len(n) for n, _, _ in items)
    for name, description, robot in items:
        suffix = f"  [robot: {robot}]" if robot else ""
        print(f"{name.ljust(width)}  {description}{suffix}")
    return 0
