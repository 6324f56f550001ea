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


#: Limits on YAML input: larger or deeper files are refused before they cost minutes or a RecursionError.
MAX_YAML_BYTES = 10 * 2**20
MAX_YAML_DEPTH = 100


class StrictYamlLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that rejects a key given twice in one mapping (YAML says keys are unique;
    PyYAML would keep the last silently) and nesting deeper than :data:`MAX_YAML_DEPTH`.
    Keys brought in by a merge (``<<: *base``) may still be overridden."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise yaml.composer.ComposerError(None, None, f"nested deeper than {MAX_YAML_DEPTH} levels",
                                                  self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, Any] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.setdefault(key, key_node.start_mark)
                except TypeError:
                    continue  # unhashable key: the base constructor reports it
                if first is not key_node.start_mark:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key!r} (first at line {first.line + 1})", key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


def load_yaml_text(text: str) -> Any:
    """``yaml.safe_load`` with :class:`StrictYamlLoader`'s checks (raises ``yaml.YAMLError``)."""
    loader = StrictYamlLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def read_yaml_file(path: str | os.PathLike[str], error: type[ConfigError] = ConfigError,
                   what: str = "file") -> Any:
    """Parse a YAML file; every failure is one ``error`` naming the file.

    Unreadable files (missing, a directory) say ``cannot read <what>``, binary files say so,
    syntax errors, duplicate keys and too deep nesting give the line and column of the problem;
    files over :data:`MAX_YAML_BYTES` are refused unread.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_YAML_BYTES and path.is_file():
            raise error(f"{what} is {size / 2**20:.1f} MB; YAML input is limited to {MAX_YAML_BYTES // 2**20} MB",
                        file=str(path))
        return load_yaml_text(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise error(f"cannot read {what}: {exc.strerror or exc}", file=str(path)) from None
    except UnicodeDecodeError:
        raise error("not a text (UTF-8) YAML file", file=str(path)) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise error(f"not valid YAML{where}: {problem}", file=str(path)) from None


PACKAGE = "sim2real"


def ament_share_dir() -> Path | None:
    """``<prefix>/share/sim2real`` of the first ``AMENT_PREFIX_PATH`` prefix holding the package, or ``None``.

    Uses ``ament_index_python.get_package_share_directory`` where ROS 2 is sourced; otherwise
    the same lookup by hand: the first prefix in ``$AMENT_PREFIX_PATH`` with the package's
    marker ``share/ament_index/resource_index/packages/sim2real`` (what ``colcon build``
    installs from ``resource/sim2real``).
    """
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
    except ImportError:
        for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
            if prefix and (Path(prefix) / "share" / "ament_index" / "resource_index" / "packages" / PACKAGE).is_file():
                return Path(prefix) / "share" / PACKAGE
        return None
    try:
        return Path(get_package_share_directory(PACKAGE, print_warning=False))
    except (PackageNotFoundError, EnvironmentError, ValueError):
        return None


def data_search_path(name: str) -> list[Path]:
    """Where :func:`data_dir` looks for the shipped folder ``name``, in order.

    1. ``$SIM2REAL_<NAME>_DIR``;
    2. the source checkout the running code was imported from (editable installs,
       ``colcon build --symlink-install``) — the data that matches the code;
    3. the ament index (``colcon build`` + ``source install/setup.bash``):
       ``<prefix>/share/sim2real/<name>``, see :func:`ament_share_dir`;
    4. the prefix this copy of the package is installed in (``<prefix>/lib/python3.X/site-packages/sim2real``
       → ``<prefix>/share/sim2real``; ``pip install --prefix``, ``setup.py install --prefix``);
    5. ``sys.prefix`` and ``sys.base_prefix`` ``/share/sim2real`` (``pip install`` into an environment).
    """
    env = os.environ.get(f"SIM2REAL_{name.upper()}_DIR")
    candidates = [Path(env)] if env else []
    if (_PKG_ROOT.parent / "setup.py").is_file():
        candidates.append(_PKG_ROOT.parent / name)
    share = ament_share_dir()
    if share is not None:
        candidates.append(share / name)
    site = _PKG_ROOT.parents
    if len(site) > 3 and site[0].name in ("site-packages", "dist-packages") and site[2].name in ("lib", "lib64"):
        candidates.append(site[3] / "share" / PACKAGE / name)
    candidates += [Path(sys.prefix) / "share" / PACKAGE / name, Path(sys.base_prefix) / "share" / PACKAGE / name]
    return candidates


def data_dir(name: str) -> Path:
    """Locate a shipped top-level folder (``robots``, ``randomization_profiles``, ``launch``, ``configs``).

    The first existing directory of :func:`data_search_path`; when none exists, its first
    entry (so the caller's "not found" error names a real place).
    """
    candidates = data_search_path(name)
    for cand in candidates:
        if cand.is_dir():
            return cand
    return candidates[0]


def check_output_path(path: str | os.PathLike[str], *, folder: bool, flag: str = "--out") -> Path:
    """Check that ``path`` can be written as an output before any work starts; return it as a Path.

    ``folder=True``: the output is a folder (it may exist as a folder, not as a file);
    ``folder=False``: the output is a file (it may exist as a file, not as a folder). Either
    way no ancestor may be an existing file. Raises :class:`ConfigError` naming ``flag``.
    """
    path = Path(path)
    if path.exists():
        if folder and not path.is_dir():
            raise ConfigError(f"{path} is a file; expected a folder", path=(flag,))
        if not folder and path.is_dir():
            raise ConfigError(f"{path} is a folder; expected a file path", path=(flag,))
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"{path} lies under {parent}, which is a file, not a folder", path=(flag,))
            break
    return path


def check_resume(out: str | os.PathLike[str], exists: bool, resume: bool, *, what: str) -> None:
    """The one rule for ``--out`` and ``--resume`` (train, adapt, calibrate).

    ``exists``: ``out`` already holds a run (its ``what``, e.g. ``checkpoints/latest.json``).
    Without ``--resume`` an existing run is refused (never overwritten); with ``--resume``
    there must be one to continue. Raises :class:`sim2real.errors.CheckpointError`.
    """
    from sim2real.errors import CheckpointError

    if resume and not exists:
        raise CheckpointError(f"{out}: no checkpoint to resume from ({what} missing)")
    if not resume and exists:
        raise CheckpointError(f"{out}: already holds a run ({what}); pass --resume to continue it or choose "
                              "another --out")
