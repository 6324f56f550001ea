"""Reading example commands out of markdown and ``--help`` text and checking them against the real parsers.

The rules (what is a command, placeholders, optional parts, what must be shipped, the ``# fails:`` marker)
are written in the docstring of tests/test_doc_commands.py, which uses this module.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import importlib
import inspect
import io
import re
import shlex
from dataclasses import dataclass
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
DOC_FILES = [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))
SHELL_TAGS = {"", "bash", "sh", "shell", "console"}
SHIPPED_DIRS = ("configs/", "randomization_profiles/", "launch/", "robots/", "benchmarks/")
BOX_DRAWING = re.compile("[\u2500-\u257f]")
FAIL_MARKER = re.compile(r"#\s*fails:")
SEPARATORS = {"&&", "||", ";", "|", "&"}
PLACEHOLDER = re.compile(r"[A-Z][A-Z0-9_]*(?:[=,.:][A-Z0-9_]+)*(?:\.[a-z]+)?|.*[$<].*")


@dataclass(frozen=True)
class Example:
    """One command line as written: ``where`` is ``file:line``; ``text`` has its continuations joined."""

    where: str
    text: str

    @property
    def meant_to_fail(self) -> bool:
        return bool(FAIL_MARKER.search(self.text))


# ----------------------------------------------------------------------------------------------- extraction
def _logical_lines(lines: list[str], first_lineno: int) -> list[tuple[int, str]]:
    """Join backslash continuations: ``[(line number of the first physical line, joined text)]``."""
    out: list[tuple[int, str]] = []
    pending, start = "", first_lineno
    for offset, line in enumerate(lines):
        if not pending:
            start = first_lineno + offset
        stripped = line.rstrip()
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        out.append((start, pending + stripped))
        pending = ""
    if pending:
        out.append((start, pending))
    return out


def markdown_examples(path: Path) -> list[Example]:
    """The lines of the shell code blocks of a markdown file."""
    rel = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)
    examples, block, fence = [], None, None
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        stripped = line.strip()
        if fence is None and stripped.startswith("```"):
            fence = lineno
            block = [] if stripped[3:].strip().lower() in SHELL_TAGS else None
            continue
        if fence is not None and stripped.startswith("```"):
            if block is not None and not any(BOX_DRAWING.search(line) for line in block):
                examples += [Example(f"{rel}:{n}", text) for n, text in _logical_lines(block, fence + 1)]
            fence, block = None, None
            continue
        if block is not None:
            block.append(line)
    return examples


def sub_parsers(parser: argparse.ArgumentParser, command: str | None = None):
    """``(top-level command name, parser)`` for every sub-parser below ``parser``."""
    for action in parser._actions:  # argparse keeps sub-parsers here; no public accessor
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                top = command or name
                yield top, sub
                yield from sub_parsers(sub, top)


EXAMPLE_STARTS = ("sim2real ", "python benchmarks/", "python3 benchmarks/", "nice ")


def _indented_examples(text: str, source_path: Path, fallback: str, seen: set[str]) -> list[Example]:
    """Indented command lines of a help text or docstring (``sim2real ...``, ``[nice] python benchmarks/...``),
    each located by its first line in ``source_path``."""
    source = source_path.read_text(encoding="utf-8").splitlines()
    rel = source_path.relative_to(ROOT).as_posix()
    lines, examples = text.splitlines(), []
    for offset, joined in _logical_lines(lines, 0):
        if not (joined[:1].isspace() and joined.strip().startswith(EXAMPLE_STARTS)) or joined.strip() in seen:
            continue
        seen.add(joined.strip())
        first = lines[offset].strip()
        lineno = next((i for i, s in enumerate(source, 1) if first in s), None)
        examples.append(Example(f"{rel}:{lineno}" if lineno else fallback, joined.strip()))
    return examples


def help_examples() -> list[Example]:
    """Examples of every parser's description and epilog, of every ``sim2real/cli`` module docstring and of
    every ``benchmarks/*.py`` docstring (read without importing the script)."""
    from sim2real.cli.main import build_parser

    examples: list[Example] = []
    seen: set[str] = set()
    for command, parser in sub_parsers(build_parser()):
        module = importlib.import_module(f"sim2real.cli.{command}")
        for text in (parser.description, parser.epilog):
            source = Path(inspect.getsourcefile(module))
            examples += _indented_examples(text or "", source, f"sim2real {command} --help", seen)
    for path in sorted((ROOT / "sim2real" / "cli").glob("*.py")):
        module = importlib.import_module(f"sim2real.cli.{path.stem}")
        examples += _indented_examples(module.__doc__ or "", path, path.relative_to(ROOT).as_posix(), seen)
    for path in sorted((ROOT / "benchmarks").glob("*.py")):
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")), clean=False) or ""
        examples += _indented_examples(doc, path, path.relative_to(ROOT).as_posix(), seen)
    return examples


# ----------------------------------------------------------------------------------------------- expansion
def split_commands(text: str) -> list[list[str]]:
    """Shell words of each command on the line (rules 1-3 in tests/test_doc_commands.py)."""
    commands, current, depth = [], [], 0
    for word in shlex.split(text, comments=True):
        if word in SEPARATORS and depth == 0:
            commands.append(current)
            current = []
            continue
        current.append(word)
        depth += (len(word) - len(word.lstrip("["))) - (len(word) - len(word.rstrip("]")))
    commands.append(current)
    out = []
    for words in commands:
        while words and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", words[0]):
            words = words[1:]
        if words[:1] == ["nice"]:
            words = words[3:] if words[1:2] == ["-n"] else words[1:]
        if words:
            out.append(words)
    return out


def _tokens(words: list[str]) -> list[str]:
    """Words with leading ``[`` and trailing ``]`` split off as tokens of their own."""
    out = []
    for word in words:
        opening = len(word) - len(word.lstrip("["))
        closing = len(word) - len(word.rstrip("]"))
        core = word[opening:len(word) - closing]
        repeat = core.endswith("...") and core != "..."
        core = core[:-3] if repeat else core
        out += ["["] * opening + ([core] if core else []) + (["..."] if repeat else []) + ["]"] * closing
    return out


def _parse_group(tokens: list[str], i: int) -> tuple[list, int]:
    """Alternatives (lists of items) up to the matching ``]``; an item is a word or a nested group."""
    alternatives, current = [], []
    while i < len(tokens):
        token = tokens[i]
        if token == "[":
            group, i = _parse_group(tokens, i + 1)
            current.append(group)
        elif token == "]":
            alternatives.append(current)
            return ("group", alternatives), i + 1
        elif token == "|":
            alternatives.append(current)
            current = []
            i += 1
            continue
        elif token != "...":
            current.append(token)
        if token != "[":
            i += 1
    raise ValueError("unbalanced [ ]")


def _render(items: list, variant: int, with_optional: bool) -> list[str]:
    words = []
    for item in items:
        if isinstance(item, tuple):
            if with_optional:
                alternatives = item[1]
                words += _render(alternatives[min(variant, len(alternatives) - 1)], variant, with_optional)
        else:
            choices = item.split("|") if "|" in item and item != "|" else [item]
            words.append(choices[min(variant, len(choices) - 1)])
    return words


def _count_alternatives(items: list) -> int:
    most = 1
    for item in items:
        if isinstance(item, tuple):
            most = max([most, len(item[1])] + [_count_alternatives(alt) for alt in item[1]])
        else:
            most = max(most, len(item.split("|")))
    return most


def expand(words: list[str]) -> list[list[str]]:
    """The argvs a written command stands for (rule 4): no optional part, then every optional part per variant."""
    tokens = _tokens(words)
    items, i = [], 0
    while i < len(tokens):
        if tokens[i] == "[":
            group, i = _parse_group(tokens, i + 1)
            items.append(group)
        elif tokens[i] == "]":
            raise ValueError("unbalanced [ ]")
        else:
            if tokens[i] != "...":
                items.append(tokens[i])
            i += 1
    argvs = [_render(items, 0, with_optional=False)]
    for variant in range(_count_alternatives(items)):
        argv = _render(items, variant, with_optional=True)
        if argv not in argvs:
            argvs.append(argv)
    return argvs


# ----------------------------------------------------------------------------------------------- checking
@contextlib.contextmanager
def placeholders_accepted():
    """Let placeholder words (rule 5) through any option's type and choices; every other word is checked."""
    get_value, check_value = argparse.ArgumentParser._get_value, argparse.ArgumentParser._check_value

    def lenient_get(self, action, arg_string):
        if isinstance(arg_string, str) and PLACEHOLDER.fullmatch(arg_string):
            return arg_string
        return get_value(self, action, arg_string)

    def lenient_check(self, action, value):
        if isinstance(value, str) and PLACEHOLDER.fullmatch(value):
            return None
        return check_value(self, action, value)

    argparse.ArgumentParser._get_value, argparse.ArgumentParser._check_value = lenient_get, lenient_check
    try:
        yield
    finally:
        argparse.ArgumentParser._get_value, argparse.ArgumentParser._check_value = get_value, check_value


def parse(parser: argparse.ArgumentParser, argv: list[str]) -> tuple[argparse.Namespace | None, str]:
    """``(namespace, "")`` when ``argv`` parses, else ``(None, the parser's error message)``."""
    err = io.StringIO()
    with placeholders_accepted(), contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            return parser.parse_args(argv), ""
        except SystemExit as exc:
            if exc.code == 0:  # --help / --version
                return argparse.Namespace(), ""
            lines = [line for line in err.getvalue().splitlines() if line.strip()]
            return None, lines[-1].strip() if lines else f"exit {exc.code}"  # the error line, not the usage


class _Captured(Exception):
    def __init__(self, parser: argparse.ArgumentParser):
        self.parser = parser


def captured_parser(main) -> argparse.ArgumentParser:
    """The parser that ``main()`` builds, taken at its ``parse_args`` call (nothing after it runs)."""
    original = argparse.ArgumentParser.parse_args

    def capture(self, *args, **kwargs):
        raise _Captured(self)

    argparse.ArgumentParser.parse_args = capture
    try:
        main()
    except _Captured as captured:
        return captured.parser
    finally:
        argparse.ArgumentParser.parse_args = original
    raise AssertionError(f"{main} returned without parsing arguments")


_PARSERS: dict[str, argparse.ArgumentParser] = {}


def parser_for(key: str, load_benchmark) -> argparse.ArgumentParser:
    """``sim2real``'s parser, a benchmark script's (``benchmarks/NAME.py``), the deploy node's or that of a
    module run with ``python -m`` (``sim2real.x.y``), built once."""
    if key not in _PARSERS:
        if key == "sim2real":
            from sim2real.cli.main import build_parser

            _PARSERS[key] = build_parser()
        elif key == "deploy_node":
            from sim2real.ros2.node import main

            _PARSERS[key] = captured_parser(lambda: main([]))
        elif key.startswith("sim2real."):
            main = importlib.import_module(key).main
            _PARSERS[key] = captured_parser(lambda: main([]))
        else:
            _PARSERS[key] = captured_parser(load_benchmark(Path(key).stem).main)
    return _PARSERS[key]


def _is_placeholder(word: str) -> bool:
    return bool(PLACEHOLDER.fullmatch(word))


def _is_path(value: str) -> bool:
    return "/" in value or value.endswith((".yaml", ".yml", ".json", ".pt", ".csv"))


def shipped_names_missing(words: list[str], ns: argparse.Namespace | None) -> list[str]:
    """What the command names as shipped but the tree does not hold (rule 6)."""
    import gymnasium as gym

    import sim2real.envs  # noqa: F401  (registers the env ids)
    from sim2real.profiles import shipped_profiles
    from sim2real.robots import list_robots

    missing = []
    for word in words:
        for value in (word, word.rpartition("=")[2]):
            if value.startswith(SHIPPED_DIRS) and not _is_placeholder(value) and not (ROOT / value).exists():
                missing.append(f"file {value}")
    if ns is None:
        return missing

    def values(name: str) -> list[str]:
        value = getattr(ns, name, None)
        given = value if isinstance(value, list) else [value]
        return [v for v in given if isinstance(v, str) and not _is_placeholder(v)]

    missing += [f"robot {r}" for r in values("robot") if not _is_path(r) and r not in list_robots()]
    profiles = values("profile")
    if getattr(ns, "profile_command", None):
        profiles += values("file") + values("files")
    missing += [f"profile {p}" for p in profiles if not _is_path(p) and p not in shipped_profiles()]
    missing += [f"env {e}" for e in values("env") + values("env_id") if e not in gym.registry]
    return missing


def semantic_errors(ns: argparse.Namespace) -> list[str]:
    """Rule 7: what the command would refuse in the values it reads beyond argparse."""
    from sim2real.errors import Sim2RealError
    from sim2real.robots import list_robots, load_robot

    errors = []
    try:
        if ns.command == "calibrate" and ns.params and ns.robot in list_robots() and not _is_placeholder(ns.params):
            from sim2real.cli.calibrate import _parse_bounds

            robot = load_robot(ns.robot)
            if robot.kind == "quadrotor":
                from sim2real.sysid.quad_params import parse_quad_params as parse_params
            else:
                from sim2real.sysid.params import parse_params
            parse_params(ns.params, robot, bounds=_parse_bounds(ns.bounds or ""))
        if ns.command == "evaluate" and ns.sweep:
            from sim2real.profiles import PARAM_KINDS, load_profile
            from sim2real.train.sweep import LATENCY, SweepAxis

            profile = ns.profile if ns.profile and not _is_placeholder(ns.profile) else None
            known = set(PARAM_KINDS) | {LATENCY} | (set(load_profile(profile).entries) if profile else set())
            errors += [f"--sweep {s}: no such parameter" for s in ns.sweep
                       if not _is_placeholder(s) and SweepAxis.parse(s).param not in known]
    except Sim2RealError as exc:
        errors.append(str(exc).splitlines()[0])
    return errors


def _launch_arguments(path: Path) -> set[str]:
    return set(re.findall(r"DeclareLaunchArgument\(\s*[\"'](\w+)[\"']", path.read_text(encoding="utf-8")))


def check_command(words: list[str], load_benchmark) -> str | None:
    """``None`` when the command is fine or not ours; else what is wrong with it (one line)."""
    if words[0] == "sim2real":
        key, argv = "sim2real", words[1:]
    elif words[0] in ("python", "python3") and len(words) > 1 and words[1].startswith("benchmarks/"):
        if not (ROOT / words[1]).is_file():
            return f"no such benchmark {words[1]}"
        key, argv = words[1], words[2:]
    elif words[0] in ("python", "python3") and words[1:2] == ["-m"] and words[2:3] and words[2].startswith("sim2real."):
        try:
            importlib.import_module(words[2])
        except ModuleNotFoundError:
            return f"no module {words[2]}"
        key, argv = words[2], words[3:]
        try:
            parser_for(key, load_benchmark)
        except AssertionError:
            return f"{key}: its main() reads no arguments with argparse, so the command cannot be checked"
    elif words[:4] == ["ros2", "run", "sim2real", "deploy_node"]:
        key, argv = "deploy_node", words[4:]
    elif words[:3] == ["ros2", "launch", "sim2real"] and len(words) > 3:
        path = ROOT / "launch" / words[3]
        if not path.is_file():
            return f"no launch file launch/{words[3]}"
        declared = _launch_arguments(path)
        unknown = [w for w in words[4:] if ":=" in w and w.split(":=")[0] not in declared]
        if unknown:
            return f"launch/{words[3]} declares no argument {', '.join(unknown)}"
        from sim2real.robots import list_robots

        robots = [w.split(":=")[1] for w in words[4:] if w.startswith("robot:=")]
        return next((f"no robot {r}" for r in robots if r not in list_robots()), None)
    else:
        return None
    for argv_variant in expand(argv):
        ns, error = parse(parser_for(key, load_benchmark), argv_variant)
        if error:
            return f"{' '.join([words[0]] + ([key] if key.startswith('benchmarks/') else []) + argv_variant)}: {error}"
        missing = shipped_names_missing(argv_variant, ns if key == "sim2real" else None)
        if missing:
            return f"names what is not shipped: {', '.join(missing)}"
        wrong = semantic_errors(ns) if key == "sim2real" and getattr(ns, "command", None) else []
        if wrong:
            return f"{' '.join(words[:2])}: {'; '.join(wrong)}"
    return None


def problems(example: Example, load_benchmark) -> list[str]:
    """What is wrong with one written example, honouring the ``# fails:`` marker (rule 8)."""
    try:
        commands = split_commands(example.text)
        errors = [e for words in commands if (e := check_command(words, load_benchmark))]
    except ValueError as exc:  # shlex: unbalanced quotes; expand: unbalanced brackets
        errors = [f"cannot read the command: {exc}"]
    if example.meant_to_fail:
        return [] if errors else [f"{example.where}: marked '# fails:' but every check passes: {example.text}"]
    return [f"{example.where}: {e}" for e in errors]
