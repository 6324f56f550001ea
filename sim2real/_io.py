"""Small file helpers: atomic writes and locating the shipped data folders."""

from __future__ import annotations

import os
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import yaml

from sim2real.errors import ConfigError

_PKG_ROOT = Path(__file__).resolve().parent


@contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w", **kwargs: Any) -> Iterator[Any]:
    """Open a temp file next to ``path`` and rename it over ``path`` on success.

    A crash or exception inside the ``with`` block leaves ``path`` untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    with atomic_open(path, "w", encoding="utf-8") as fh:
        fh.write(text)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    with atomic_open(path, "wb") as fh:
        fh.write(data)


def atomic_write_yaml(path: str | os.PathLike[str], data: Any) -> None:
    atomic_write_text(path, yaml.safe_dump(data, sort_keys=False, default_flow_style=None))


def read_yaml_file(path: str | os.PathLike[str], error: type[ConfigError] = ConfigError,
                   what: str = "file") -> Any:
    """Parse a YAML file; every failure is one ``error`` naming the file.

    Unreadable files (missing, a directory) say ``cannot read <what>``, binary files say so,
    and syntax errors give the line and column of the problem.
    """
    path = Path(path)
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise error(f"cannot read {what}: {exc.strerror or exc}", file=str(path)) from None
    except UnicodeDecodeError:
        raise error("not a text (UTF-8) YAML file", file=str(path)) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise error(f"not valid YAML{where}: {problem}", file=str(path)) from None


def data_dir(name: str) -> Path:
    """Locate a shipped top-level folder (``robots``, ``randomization_profiles``, ``launch``, ``configs``).

    Search order: ``$SIM2REAL_<NAME>_DIR``, the source checkout (editable install),
    then ``<prefix>/share/sim2real/<name>`` where ``setup.py`` installs them.
    """
    env = os.environ.get(f"SIM2REAL_{name.upper()}_DIR")
    candidates = [Path(env)] if env else []
    candidates += [
        _PKG_ROOT.parent / name,
        Path(sys.prefix) / "share" / "sim2real" / name,
        Path(sys.base_prefix) / "share" / "sim2real" / name,
    ]
    for cand in candidates:
        if cand.is_dir():
            return cand
    return candidates[0]
