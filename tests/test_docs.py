"""The docs stay true and the README stays the front door: docs/cli.md names every command,
docs/profiles.md every profile kind and key, the docs every env id, robot, shipped profile, run config
and benchmark; README links and file references resolve; nothing in the tree narrates how it was made."""

from __future__ import annotations

import argparse
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
DOCS = {p.name: p.read_text(encoding="utf-8") for p in (ROOT / "docs").glob("*.md")}
ALL_DOCS = "\n".join(DOCS.values())


def _subcommands(parser: argparse.ArgumentParser, prefix: str = "sim2real") -> list[str]:
    out = []
    for action in parser._actions:  # argparse keeps sub-parsers here; no public accessor
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out.append(f"{prefix} {name}")
                out += _subcommands(sub, f"{prefix} {name}")
    return out


def test_readme_is_the_front_door():
    assert len(README.encode("utf-8")) <= 15 * 1024, "README.md over 15 KB: reference belongs in docs/"
    for block in ("main-command", "test-command"):
        assert f"<!-- {block} -->" in README


def test_every_cli_command_is_documented():
    from sim2real.cli.main import build_parser

    commands = _subcommands(build_parser())
    assert len(commands) >= 9
    missing = [c for c in commands if c not in DOCS["cli.md"]]
    assert not missing, f"docs/cli.md does not document: {missing}"
    top = [c for c in commands if c.count(" ") == 1]
    assert not [c for c in top if c not in README], "README's table misses a top-level command"


def test_every_profile_kind_and_key_is_documented():
    from sim2real.profiles import PARAM_KINDS

    doc = DOCS["profiles.md"]
    missing = [kind for kind in PARAM_KINDS if f"`{kind}`" not in doc]
    assert not missing, f"docs/profiles.md misses kinds: {missing}"
    for key in ("description", "extends", "robot", "params", "param", "targets", "distribution",
                "operation", "when", "interval", "shared", "low", "high", "mean", "std", "value"):
        assert f"`{key}`" in doc, key
    for kind, spec in PARAM_KINDS.items():
        for option in getattr(spec, "options", {}) or {}:
            assert f"`{option}`" in doc, f"docs/profiles.md misses option {option!r} of kind {kind!r}"


def test_every_env_robot_profile_and_config_is_documented():
    import gymnasium as gym

    import sim2real.envs  # noqa: F401  (registers the ids)
    from sim2real.profiles import shipped_profiles
    from sim2real.robots import list_robots

    ids = [i for i in gym.registry if i.startswith("sim2real/")]
    assert ids
    names = ids + list_robots() + list(shipped_profiles())
    names += [p.stem for p in (ROOT / "configs").rglob("*.yaml")]
    missing = [n for n in names if n not in ALL_DOCS]
    assert not missing, f"docs/ do not mention: {missing}"


def test_every_benchmark_has_a_results_section():
    scripts = [p.name for p in (ROOT / "benchmarks").glob("*.py")]
    assert scripts
    missing = [s for s in scripts if f"`benchmarks/{s}`" not in DOCS["benchmarks.md"]]
    assert not missing, f"docs/benchmarks.md has no section for: {missing}"


@pytest.mark.parametrize("name", ["README.md"] + [f"docs/{n}" for n in sorted(DOCS)])
def test_links_and_file_references_resolve(name):
    path = ROOT / name
    text = path.read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if "://" in target:
            continue
        assert (path.parent / target).exists(), f"{name} links to missing {target}"
    for ref in re.findall(r"(?<![\w/])(?:configs|randomization_profiles|launch|benchmarks)/[\w./-]+\.(?:ya?ml|py)", text):
        assert (ROOT / ref).exists(), f"{name} refers to missing file {ref}"


# Work periods (the word for one, then its number or after an ordinal), tracker numbers, "build" + " machines".
# The words are split here so that this pattern is not itself a line that narrates.
_SESSION, _ROUND, _ISSUE, _MACHINES = "sess" + "ion", "ro" + "und", "iss" + "ue", "build" + " machines"
_ORDINALS = "first|second|third|fourth|fifth|sixth|seventh|eighth|this|last|next"
NARRATION = re.compile(rf"\b{_SESSION}s? ?[0-9]|\b({_ORDINALS}) ({_SESSION}|{_ROUND})\b|\b{_ISSUE} #?[0-9]+\b|{_MACHINES}",
                       re.I)


def test_nothing_narrates_how_it_was_made():
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    hits = []
    for rel in files:
        if rel.endswith((".png", ".so", ".pt", ".zip", ".pkl")):
            continue
        try:
            text = (ROOT / rel).read_text(encoding="utf-8")
        except (UnicodeDecodeError, FileNotFoundError):
            continue
        hits += [f"{rel}:{i}" for i, line in enumerate(text.splitlines(), 1) if NARRATION.search(line)]
    assert not hits, f"lines narrating the project's development: {hits[:20]}"
