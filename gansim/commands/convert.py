"""`gansim convert`: CaloChallenge-format files (incident_energies, showers) to the CaloGAN contract and back."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from gansim.errors import GansimError

BLOCK = 65536  # events per block: bounded memory on large files
CHALLENGE_KEYS = ("incident_energies", "showers")
MEV_PER_GEV = 1000.0
# CaloChallenge 2022 datasets by voxel count: other geometries than CaloGAN's, named in the refusal.
OTHER_GEOMETRIES = {
    368: "CaloChallenge dataset 1, photons (ATLAS-like: 5 layers of radial x angular bins, 368 voxels)",
    533: "CaloChallenge dataset 1, pions (ATLAS-like: 7 layers of radial x angular bins, 533 voxels)",
    6480: "CaloChallenge dataset 2 (45 layers x 16 angular x 9 radial bins = 6,480 voxels)",
    40500: "CaloChallenge dataset 3 (45 layers x 50 angular x 18 radial bins = 40,500 voxels)",
}

DESCRIPTION = """\
Bring your own data. The CaloChallenge format (datasets 'incident_energies' (N, 1) and 'showers' (N, voxels), both
in MeV) becomes a CaloGAN-format file that gansim trains and evaluates on, when the geometry is CaloGAN's: 504
voxels = layer_0 (3 x 96), layer_1 (12 x 12), layer_2 (12 x 6) flattened in that order (e.g. CaloGAN data exported
for CaloFlow-style tools). Incident energies become GeV; 'overflow', which the format lacks, is written as zeros
and flagged not_modelled. The CaloChallenge 2022 datasets 1-3 have other geometries (ATLAS-like layers of radial x
angular bins; 45-layer cylinders) and are refused with one line: training on them needs a new data kind
(docs/architecture.md, "Where to add").

A CaloGAN-format file (e.g. `gansim produce` output) goes the other way, for the CaloChallenge evaluation tools.

examples:
  gansim convert calogan_eplus_challenge.h5 eplus.h5 --particle eplus
  gansim convert runs/prod/dataset.h5 generated_challenge.h5
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("convert", help="CaloChallenge-format files to and from the CaloGAN contract",
                       description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", metavar="IN", help="CaloChallenge-format or CaloGAN-format HDF5 file")
    p.add_argument("output", metavar="OUT", help="HDF5 file to write (atomically)")
    p.add_argument("--particle", default=None, help="particle attribute of the CaloGAN file (eplus, gamma, piplus)")
    p.set_defaults(func=run)


def _open(path: str) -> Any:
    from gansim.data.schema import open_h5

    return open_h5(path)


def challenge_to_calogan(src: str, dst: str, particle: str | None) -> int:
    """Stream a 504-voxel CaloChallenge file into a CaloGAN-format one; returns the number of events."""
    import h5py

    from gansim.atomic import atomic_path
    from gansim.data.schema import describe, validate
    from gansim.kinds.calo import CALO_LAYERS, LAYER_SHAPES, N_CELLS

    with _open(src) as f:
        e, s = f["incident_energies"], f["showers"]
        n, voxels = s.shape[0], int(np.prod(s.shape[1:]))
        if voxels != N_CELLS:
            what = OTHER_GEOMETRIES.get(voxels, f"{voxels} voxels per shower")
            raise GansimError(f"{src}: {what}, not the CaloGAN geometry ({N_CELLS} cells: layer_0 3x96, layer_1 "
                              "12x12, layer_2 12x6); gansim models that geometry only (another one is a new data "
                              "kind: docs/architecture.md)")
        if e.shape[0] != n:
            raise GansimError(f"{src}: 'incident_energies' has {e.shape[0]} events but 'showers' has {n}")
        attrs = {k: v for k, v in f.attrs.items()}
        with atomic_path(dst) as tmp, h5py.File(tmp, "w") as out:
            dsets = {"energy": out.create_dataset("energy", (n, 1), "f4", compression="gzip", shuffle=True)}
            for layer in (*CALO_LAYERS, "overflow"):
                shape = LAYER_SHAPES.get(layer, (3,))
                dsets[layer] = out.create_dataset(layer, (n, *shape), "f4", compression="gzip", shuffle=True,
                                                  chunks=(min(max(n, 1), 1024), *shape))
            for a in range(0, n, BLOCK):
                b = min(a + BLOCK, n)
                dsets["energy"][a:b] = np.asarray(e[a:b], np.float32).reshape(-1, 1) / MEV_PER_GEV
                cells = np.asarray(s[a:b], np.float32).reshape(b - a, -1)
                start = 0
                for layer in CALO_LAYERS:
                    size = int(np.prod(LAYER_SHAPES[layer]))
                    dsets[layer][a:b] = cells[:, start:start + size].reshape(b - a, *LAYER_SHAPES[layer])
                    start += size
                dsets["overflow"][a:b] = 0.0
            describe(out, not_modelled=("overflow",))
            out.attrs["converted_from"] = f"CaloChallenge format: {Path(src).name}"
            particle = particle or attrs.get("particle")
            if particle:
                out.attrs["particle"] = particle
    return validate(dst).n_events  # what gansim train will accept: the contract's value rules included


def calogan_to_challenge(src: str, dst: str) -> int:
    """A CaloGAN-format file as 'incident_energies' (MeV) and 'showers' (N, 504) MeV; overflow is dropped."""
    import h5py

    from gansim.atomic import atomic_path
    from gansim.data.schema import validate
    from gansim.kinds.calo import CALO_LAYERS, N_CELLS

    n = validate(src, expect="calo", scan=False).n_events
    with _open(src) as f, atomic_path(dst) as tmp, h5py.File(tmp, "w") as out:
        e = out.create_dataset("incident_energies", (n, 1), "f4", compression="gzip")
        s = out.create_dataset("showers", (n, N_CELLS), "f4", compression="gzip", shuffle=True,
                               chunks=(min(max(n, 1), 1024), N_CELLS))
        for a in range(0, n, BLOCK):
            b = min(a + BLOCK, n)
            e[a:b] = np.asarray(f["energy"][a:b], np.float32).reshape(-1, 1) * MEV_PER_GEV
            s[a:b] = np.concatenate([np.asarray(f[k][a:b], np.float32).reshape(b - a, -1) for k in CALO_LAYERS], 1)
        e.attrs["units"], s.attrs["units"] = "MeV", "MeV"
        out.attrs["converted_from"] = f"CaloGAN format: {Path(src).name} (overflow dropped: not in this format)"
    return n


def run(args: argparse.Namespace) -> int:
    from gansim.paths import refuse_overwrite
    from gansim.progress import finish

    refuse_overwrite(args.output, args.input, what="OUT")
    with _open(args.input) as f:
        names = set(f.keys())
    if set(CHALLENGE_KEYS) <= names:
        n = challenge_to_calogan(args.input, args.output, args.particle)
        finish("convert", f"{n:,} showers from CaloChallenge format {args.input} -> CaloGAN format {args.output} "
                          "(energies in GeV; overflow flagged not_modelled)",
               f"gansim inspect {args.output}  (then: gansim train --data {args.output})")
        return 0
    if {"energy", "layer_0"} <= names:
        n = calogan_to_challenge(args.input, args.output)
        finish("convert", f"{n:,} showers from CaloGAN format {args.input} -> CaloChallenge format {args.output}")
        return 0
    raise GansimError(f"{args.input}: neither CaloChallenge ('incident_energies', 'showers') nor CaloGAN ('energy', "
                      f"'layer_0', ...) datasets; found: {', '.join(sorted(names)) or 'nothing'}")
