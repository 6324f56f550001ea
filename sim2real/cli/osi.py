"""``sim2real osi``: online system identification around a policy trained with the dynamics
parameters μ in its observation: UP-OSI (Yu et al. 2017) or RMA (Kumar et al. 2021).

    sim2real osi configs/sysid/osi_kuka.yaml [--out runs/osi_kuka] [--quiet]   # method: up_osi (default)
    sim2real osi configs/sysid/rma_kuka.yaml [--out runs/rma_kuka] [--quiet]   # method: rma

``method: up_osi`` runs the universal policy (``universal_policy:`` run directory, trained with
``sim2real train configs/sysid/up_kuka.yaml``) on randomized envs, trains the OSI network (MLP
over the last ``history`` observation–action pairs -> μ̂) by regression, iterates with μ̂ in the
loop, and exports ``<out>/up_osi.pt`` (OSI + policy, one TorchScript module) with its
``up_osi.yaml`` sidecar and ``<out>/up_osi_osi.pt`` (OSI alone).

``method: rma`` runs the phase-1 base policy π(o, z = e(μ)) (``base_policy:`` run directory,
trained with ``sim2real train configs/sysid/rma_base_kuka.yaml``), trains the adaptation module
φ (temporal convolutions over the last ``history`` observation–action pairs -> ẑ) by regression
onto z, iterates with ẑ in the loop, and exports ``<out>/rma.pt`` (φ + policy, one TorchScript
module) with its ``rma.yaml`` sidecar and ``<out>/rma_adaptation.pt`` (φ alone).

Both write ``<out>/osi.json`` (per-iteration errors on held-out episodes run with the estimate in
the loop). Same as ``python -m sim2real.sysid.osi CONFIG``.
"""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("osi", help="train an online identification network (UP-OSI or RMA) around a policy "
                              "and export both", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", help="OSI config YAML; its method: key picks up_osi (default) or rma (keys: see docs/sysid.md)")
    p.add_argument("--out", help="output directory (overrides the config's out)")
    p.add_argument("--quiet", action="store_true", help="no progress bar, print only the output files")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    import json

    from sim2real.sysid.osi import load_config, run

    cfg = load_config(args.config)
    if args.out:
        cfg.out = args.out
    report = run(cfg, progress=not args.quiet)
    if args.quiet:
        for path in report.get("files", {}).values():
            print(path)
    else:
        print(json.dumps(report, indent=2))
    return 0
