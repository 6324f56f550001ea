"""README.md stays true: it names every CLI command and sub-command, every profile kind and
key, every env id, and every shipped profile, robot and run config."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _subcommands(parser: argparse.ArgumentParser, prefix: str = "sim2real") -> list[str]:
    out = []
    for action in parser._actions:  # argparse keeps sub-parsers here; no public accessor
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out.append(f"{prefix} {name}")
                out += _subcommands(sub, f"{prefix} {name}")
    return out


def test_every_cli_command_is_documented():
    from sim2real.cli.main import build_parser

    commands = _subcommands(build_parser())
    assert len(commands) >= 9
    missing = [c for c in commands if c not in README]
    assert not missing, f"README does not document: {missing}"


def test_every_profile_kind_and_key_is_documented():
    from sim2real.profiles import PARAM_KINDS

    missing = [kind for kind in PARAM_KINDS if f"`{kind}`" not in README]
    assert not missing, f"README's profile reference misses kinds: {missing}"
    for key in ("description", "extends", "robot", "params", "param", "targets", "distribution",
                "operation", "when", "interval", "shared", "low", "high", "mean", "std", "value"):
        assert f"`{key}`" in README, key
    for kind, spec in PARAM_KINDS.items():
        for option in getattr(spec, "options", {}) or {}:
            assert f"`{option}`" in README, f"README misses option {option!r} of kind {kind!r}"


def test_every_env_robot_profile_and_config_is_documented():
    import gymnasium as gym

    import sim2real.envs  # noqa: F401  (registers the ids)
    from sim2real.profiles import shipped_profiles
    from sim2real.robots import list_robots

    ids = [i for i in gym.registry if i.startswith("sim2real/")]
    assert ids
    names = ids + list_robots() + list(shipped_profiles())
    names += [p.stem for p in (ROOT / "configs").rglob("*.yaml")]
    missing = [n for n in names if n not in README]
    assert not missing, f"README does not mention: {missing}"


@pytest.mark.parametrize("folder", ["benchmarks"])
def test_every_benchmark_is_documented(folder):
    scripts = [p.name for p in (ROOT / folder).glob("*.py")]
    assert scripts
    missing = [s for s in scripts if s not in README]
    assert not missing, f"README does not describe: {missing}"


def test_readme_commands_use_existing_files():
    for path in re.findall(r"(?:configs|randomization_profiles|launch|benchmarks)/[\w./-]+\.(?:ya?ml|py)", README):
        assert (ROOT / path).exists(), f"README refers to missing file {path}"
