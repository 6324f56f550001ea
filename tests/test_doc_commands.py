"""Every example command written in the docs and in ``--help`` parses with the real command line.

Where the commands come from:

* README.md and docs/*.md: fenced code blocks that are untagged or tagged ``bash``/``sh``/``shell``/``console``,
  except blocks that draw with box-drawing characters (U+2500-U+257F: pipeline diagrams, not commands);
* the ``--help`` text (description and epilog) of every ``sim2real`` parser and sub-parser, and the docstrings
  of every ``sim2real/cli`` module and every ``benchmarks/*.py`` script: their indented lines that start with
  ``sim2real``, ``python benchmarks/`` or ``nice``; a failure names the line of the file that holds the text.

How a line becomes the argv that is checked:

1. A line ending in ``\\`` continues on the next one. The line is split into words like a POSIX shell would
   (``shlex``, quotes respected, ``# comments`` removed).
2. The words are cut into separate commands at ``&&``, ``||``, ``;``, ``|`` and ``&`` written as words of their
   own (outside ``[...]``).
3. In each command, leading ``NAME=value`` assignments and ``nice [-n N]`` are dropped. What remains is checked
   when it is ``sim2real ...`` (against ``sim2real.cli.main.build_parser()``), ``python[3] benchmarks/NAME.py ...``
   or ``python[3] -m sim2real.MODULE ...`` (against the parser that script's or module's ``main`` builds),
   ``ros2 run sim2real deploy_node ...`` (against the node's parser) or ``ros2 launch sim2real FILE name:=value ...`` (the launch file exists and declares each ``name``).
   Other commands (pip, colcon, cat, ros2 topic ...) are not ours and are skipped.
4. ``[...]`` marks an optional part and ``...`` (a word or a word's end) a repetition. A command is checked once
   with every optional part left out and once with every optional part written in. Alternatives, ``a | b``
   inside brackets or ``a|b`` inside one word, are checked one at a time (variant k takes the k-th alternative
   everywhere; a group or word with fewer alternatives keeps its last).
5. Placeholders stand for any value and skip the option's type and choices: words in capitals (``CONFIG``, ``N``,
   ``DIR``, ``LABEL=P2``, ``OUT.json``, ``J1,J2``) and words holding ``$`` (``$(...)``, ``$VAR``) or ``<...>``.
   Every other word goes through the option's real type and choices.
6. Shipped things must exist: any word (or the part after ``=``) under ``configs/``, ``randomization_profiles/``,
   ``launch/``, ``robots/`` or ``benchmarks/``; ``--robot`` names (robots/); ``--profile`` names and the profile
   named by ``profile show|sample|validate`` when it is a name, not a path; env ids (``--env``, ``envs run ID``).
7. Values that the command line reads further are read the way the command reads them, without running it:
   ``calibrate --params`` (and ``--bounds``) through the calibrators' parameter parser for the shipped robot,
   ``evaluate --sweep`` through the sweep parser (the parameter must be a kind, ``latency`` or a profile entry).
8. A command that is meant to fail carries the comment ``# fails:`` (the reason after it); it must then fail one
   of the checks above.

A failure names the file and line of the command.
"""

from __future__ import annotations

import shlex

import pytest
from doc_commands import (DOC_FILES, ROOT, expand, help_examples, markdown_examples, parser_for, problems,
                          split_commands, sub_parsers)


def _is_ours(example) -> bool:
    try:
        return any(w[0] in ("sim2real", "python", "python3", "ros2") for w in split_commands(example.text))
    except ValueError:
        return True


DOC_EXAMPLES = [e for path in DOC_FILES for e in markdown_examples(path) if _is_ours(e)]


@pytest.mark.parametrize("path", DOC_FILES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_documented_commands_parse(path, load_benchmark):
    found = [problem for e in DOC_EXAMPLES if e.where.startswith(path.relative_to(ROOT).as_posix() + ":")
             for problem in problems(e, load_benchmark)]
    assert not found, "\n".join(found)


def test_help_examples_parse(load_benchmark):
    examples = help_examples()
    for where in ("sim2real/cli/calibrate.py:", "sim2real/cli/_quadrotor_sysid.py:", "benchmarks/adaptation.py:",
                  "benchmarks/online_id.py:"):
        assert any(e.where.startswith(where) for e in examples), (where, [e.where for e in examples])
    found = [problem for e in examples for problem in problems(e, load_benchmark)]
    assert not found, "\n".join(found)


def test_every_help_text_formats(load_benchmark):
    """``--help`` of every sub-command, benchmark script and the deploy node renders (argparse fails on a stray
    ``%`` in a help string only when the help is printed)."""
    parsers = [parser for _, parser in sub_parsers(parser_for("sim2real", load_benchmark))]
    parsers += [parser_for(f"benchmarks/{p.name}", load_benchmark) for p in sorted((ROOT / "benchmarks").glob("*.py"))]
    parsers.append(parser_for("deploy_node", load_benchmark))
    assert len(parsers) >= 30
    for parser in parsers:
        assert parser.format_help().startswith("usage: ")


def test_the_docs_have_commands_of_every_kind():
    """The extraction sees the commands (a parser that read nothing would pass every check above)."""
    texts = [e.text for e in DOC_EXAMPLES]
    for start in ("sim2real train ", "sim2real deploy ", "sim2real calibrate ", "python benchmarks/",
                  "ros2 launch sim2real "):
        assert any(start in t for t in texts), start
    assert sum(t.lstrip().startswith("sim2real ") for t in texts) >= 60


BROKEN = [
    ("sim2real train configs/train/quickstart.yaml --config x.yaml", "unrecognized arguments: --config"),
    ("sim2real export --policy runs/x", "required: --out"),
    ("sim2real train CONFIG --seed -1", "--seed"),
    ("sim2real train configs/train/no_such_run.yaml", "file configs/train/no_such_run.yaml"),
    ("sim2real sim2sim --robot no_such_robot", "robot no_such_robot"),
    ("sim2real envs run sim2real/KukaReach-v0 --profile no_such_profile", "profile no_such_profile"),
    ("sim2real envs run sim2real/NoSuchEnv-v0", "env sim2real/NoSuchEnv-v0"),
    ("sim2real profile show no_such_profile", "profile no_such_profile"),
    ("sim2real calibrate --log L --robot kuka_iiwa --params mass,stiffness --out c.yaml", "stiffness"),
    ("sim2real calibrate --log L --robot quadrotor --params kf,damping --out c.yaml", "damping"),
    ("sim2real evaluate --policy P --sweep stiffness=1:2:3", "stiffness"),
    ("sim2real train CONFIG [--out DIR] [--no-such-flag]", "--no-such-flag"),
    ("sim2real deploy --policy P --transport dds|carrier-pigeon", "carrier-pigeon"),
    ("sim2real deploy --policy P --robot kuka_iiwa \\\n    --no-such-flag", "--no-such-flag"),
    ("cd /tmp && sim2real train CONFIG --no-such-flag  # a comment", "--no-such-flag"),
    ("OMP_NUM_THREADS=1 nice -n 10 python benchmarks/calibration.py --no-such-flag", "--no-such-flag"),
    ("python benchmarks/no_such_benchmark.py", "no such benchmark"),
    ("ros2 launch sim2real deploy_arm.launch.py policy:=/p.pt speed:=3", "no argument speed:=3"),
    ("ros2 launch sim2real no_such.launch.py", "no launch file"),
    ("ros2 run sim2real deploy_node --no-such-flag", "--no-such-flag"),
    ("python -m sim2real.ros2.mock_drone --rate 100 --no-such-flag", "--no-such-flag"),
    ("python -m sim2real.no_such_module", "no module sim2real.no_such_module"),
    ("sim2real deploy --policy P  # fails: nothing wrong with it", "marked '# fails:'"),
]


@pytest.mark.parametrize("command,expected", BROKEN, ids=[c for c, _ in BROKEN])
def test_a_wrong_command_is_reported_with_its_file_and_line(tmp_path, load_benchmark, command, expected):
    doc = tmp_path / "doc.md"
    doc.write_text("# title\n\n```bash\nsim2real envs\n" + command + "\n```\n", encoding="utf-8")
    examples = markdown_examples(doc)
    assert [e.where for e in examples] == [f"{doc}:4", f"{doc}:5"]
    assert problems(examples[0], load_benchmark) == []
    found = problems(examples[1], load_benchmark)
    assert len(found) == 1 and found[0].startswith(f"{doc}:5: ") and expected in found[0], found


def test_what_is_not_a_command_is_left_alone(tmp_path, load_benchmark):
    doc = tmp_path / "doc.md"
    doc.write_text("```python\nsim2real train --no-such-flag\n```\n"          # python block
                   "```\nsim2real train ──> --no-such-flag\n```\n"              # a diagram
                   "```bash\npip install sim2real --no-such-flag\n"              # not our command
                   "sim2real train CONFIG --no-such-flag  # fails: the flag does not exist\n```\n", encoding="utf-8")
    examples = markdown_examples(doc)
    assert [e.text.split()[0] for e in examples] == ["pip", "sim2real"]
    assert [p for e in examples for p in problems(e, load_benchmark)] == []


def test_optional_parts_and_alternatives_expand_to_every_form():
    argvs = expand(shlex.split("train CONFIG [--seed N | --seeds 0,1 [--workers K]] [--ray auto|ADDRESS] [--resume]"))
    assert argvs == [["train", "CONFIG"],
                     ["train", "CONFIG", "--seed", "N", "--ray", "auto", "--resume"],
                     ["train", "CONFIG", "--seeds", "0,1", "--workers", "K", "--ray", "ADDRESS", "--resume"]]
    assert expand(["validate", "FILE...", "[--robot", "NAME]"]) == [["validate", "FILE"],
                                                                  ["validate", "FILE", "--robot", "NAME"]]
