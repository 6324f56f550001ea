"""``sim2real`` console script: one sub-command per job.

Each sub-command lives in its own module ``sim2real.cli.<name>`` exposing
``register(subparsers)``, which adds its parser and sets ``func`` to a callable
taking the parsed ``argparse.Namespace`` and returning an exit code. Modules keep
heavy imports (torch, PyBullet, SB3) inside the function so ``--help`` is fast.
Errors of the toolkit's own types are printed as one line (no traceback), exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from sim2real import __version__
from sim2real.errors import Sim2RealError

# Order here is the order in --help.
COMMAND_MODULES = (
    "envs", "profile", "train", "evaluate", "export", "record", "calibrate", "actuator", "osi", "adapt", "deploy", "sim2sim", "excite",
)


def build_parser() -> argparse.ArgumentParser:
    from sim2real.cli._args import OneLineParser

    parser = OneLineParser(
        prog="sim2real",
        description="Sim-to-real robot learning: randomized simulation, robust training, "
        "system identification, domain adaptation and ROS 2 deployment.",
    )
    parser.add_argument("--version", action="version", version=f"sim2real {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"sim2real.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"sim2real.cli.{name}":
                continue  # command not built in this installation
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        return int(args.func(args) or 0)
    except Sim2RealError as exc:
        # One line, always: multi-line messages (e.g. YAML parser errors) are joined.
        msg = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        print(f"sim2real {args.command}: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"sim2real {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # Output piped into `head` and the reader went away: not an error of ours.
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
