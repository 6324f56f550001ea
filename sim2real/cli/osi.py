"""``sim2real osi``: online system identification (UP-OSI, Yu et al. 2017) around a universal policy.

    sim2real osi configs/sysid/osi_kuka.yaml [--out runs/osi_kuka] [--quiet]

Runs the universal policy (``universal_policy:`` run directory, trained with ``sim2real train
configs/sysid/up_kuka.yaml``) on randomized envs, trains the OSI network (MLP over the last
``history`` observation–action pairs -> μ̂) by regression, iterates with μ̂ in the loop, and
exports ``<out>/up_osi.pt`` (OSI + policy, one TorchScript module) with its ``up_osi.yaml``
sidecar, ``<out>/up_osi_osi.pt`` (OSI alone) and ``<out>/osi.json`` (per-iteration errors).
Same as ``python -m sim2real.sysid.osi CONFIG``.
"""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("osi", help="train the UP-OSI network around a universal policy and export both",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", help="OSI config YAML (keys: see docs/sysid.md)")
    p.add_argument("--out", help="output directory (overrides the config's out)")
    p.add_argument("--quiet", action="store_true", help="no progress bar, print only the output files")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    import json

    from sim2real.sysid.osi import OSIConfig, run_osi

    cfg = OSIConfig.load(args.config)
    if args.out:
        cfg.out = args.out
    report = run_osi(cfg, progress=not args.quiet)
    if args.quiet:
        for path in report.get("files", {}).values():
            print(path)
    else:
        print(json.dumps(report, indent=2))
    return 0
