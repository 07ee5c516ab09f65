"""Does the critic overfit? Its mean score on training-split vs held-out real showers, and on generated ones.

A critic that memorises the training showers scores them above the validation split's; the gap between real
and generated (the critic's Wasserstein estimate, for WGAN-GP) says how far the generator is in its eyes.
Example (the fidelity benchmark's runs):

    python benchmarks/critic_gap.py --data runs/bench-fidelity/data/eplus-50000-seed101.h5 \\
        runs/bench-fidelity/calo-mlp-eplus-hqc-long/train/calo-mlp-eplus/checkpoint_epoch_0000{40,100}
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from gansim.config import load_config
from gansim.data.dataset import H5EventDataset, train_val_datasets
from gansim.train.checkpoint import STATE_FILE, load_state
from gansim.train.trainer import Trainer


def first_events(ds: H5EventDataset, n: int) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(v[:n]) for k, v in ds.arrays().items()}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoints", nargs="+", type=Path, help="checkpoint directories of one run")
    p.add_argument("--config", default="calo-mlp-eplus", help="the run's config (name or YAML path)")
    p.add_argument("--data", required=True, help="the run's training file (its seeded validation split is used)")
    p.add_argument("--events", type=int, default=4000, help="showers per sample (default: 4000)")
    args = p.parse_args()
    if missing := [str(ck) for ck in args.checkpoints if not (ck / STATE_FILE).is_file()]:
        p.error(f"no {STATE_FILE} in: {', '.join(missing)} (pass checkpoint_epoch_* directories of a run)")
    torch.set_num_threads(1)
    cfg = load_config(args.config, [f"data.path={args.data}"])
    train_ds, val_ds = train_val_datasets(args.data, cfg.data.val_fraction, cfg.run.seed)
    samples = first_events(train_ds, args.events), first_events(val_ds, args.events)
    cpu = torch.device("cpu")
    gen = torch.Generator().manual_seed(0)
    print("checkpoint | step | D(train real) | D(held-out real) | train - held-out | D(generated) | held-out - gen.")
    for ck in args.checkpoints:
        tr = Trainer(cfg, cpu)
        tr.load(load_state(ck / STATE_FILE))
        scores = []
        with torch.no_grad():
            for batch in samples:
                real, cond = tr.kind.to_model(batch, cpu)
                scores.append(tr.D(real, cond)[0].mean().item())
            z = torch.randn(len(cond), tr.latent_size, generator=gen)
            scores.append(tr.D(tr.G(z, cond), cond)[0].mean().item())
        print(f"{ck.name} | {tr.step} | {scores[0]:.3f} | {scores[1]:.3f} | {scores[0] - scores[1]:.3f} | "
              f"{scores[2]:.3f} | {scores[1] - scores[2]:.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
