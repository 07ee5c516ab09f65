"""Cost of `gansim tune`: one real-config training iteration + one fidelity check, and the 200-trial estimate.

    .venv/bin/python benchmarks/bench_tune.py [--config configs/calogan-eplus.yaml] [--steps 3] [--events 100000]

Times, in one process on this machine's CPU (torch threads = --threads), the loop's own GAN iteration
(gansim.train.steps.iteration) on the config's batch size and the per-epoch physics check
(gansim.train.validation.physics_check on train.val_events reference events), then estimates one epoch over
--events training showers and a 200-trial ASHA study using the space file's epochs / grace / reduction factor.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from gansim.tune.space import load_study


def asha_mean_epochs(max_t: int, grace: int, rf: float) -> float:
    """Expected epochs per trial when each ASHA rung (grace·rf^k) keeps the best 1/rf of the trials."""
    rungs = [grace * rf**k for k in range(64) if grace * rf**k < max_t]
    bounds = [*rungs, max_t]
    total, survive, prev = 0.0, 1.0, 0.0
    for b in bounds:
        total += survive * (b - prev)
        prev, survive = b, survive / rf
    return total


def fake_batch(n: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
    shapes = {"layer_0": (3, 96), "layer_1": (12, 12), "layer_2": (12, 6)}
    out = {k: torch.from_numpy(rng.exponential(20.0, size=(n, *s)).astype(np.float32)) for k, s in shapes.items()}
    out["energy"] = torch.from_numpy(rng.uniform(1, 100, size=(n, 1)).astype(np.float32))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="configs/calogan-eplus.yaml")
    ap.add_argument("--space", default="configs/tune/calogan.yaml")
    ap.add_argument("--steps", type=int, default=3, help="timed iterations (after one warm-up)")
    ap.add_argument("--events", type=int, default=100_000, help="showers in the real training file")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--trials", type=int, default=200)
    args = ap.parse_args()

    from gansim.train.steps import iteration
    from gansim.train.validation import physics_check

    from gansim.models.registry import model_kind
    from gansim.train.loop import build_state

    torch.set_num_threads(args.threads)
    cfg, space = load_study(args.config, args.space)
    paper = space.points_to_evaluate[0] if space.points_to_evaluate else None
    if paper:
        cfg = space.trial_config(cfg.to_dict(), paper)
    device = torch.device("cpu")
    kind = model_kind(cfg)
    st = build_state(cfg, device)
    rng = np.random.default_rng(0)
    B = cfg.train.batch_size
    batches = [[fake_batch(B, rng) for _ in range(cfg.train.n_critic)] for _ in range(args.steps + 1)]
    iteration(st, batches[0], cfg, kind, 0, 1, device)  # warm-up
    t0 = time.perf_counter()
    for b in batches[1:]:
        iteration(st, b, cfg, kind, 0, 1, device)
    it_s = (time.perf_counter() - t0) / args.steps

    ref = {k: v.numpy() for k, v in fake_batch(cfg.train.val_events, rng).items()}
    ref["overflow"] = np.zeros((cfg.train.val_events, 3), np.float32)
    t0 = time.perf_counter()
    physics_check(st.g_ema if st.g_ema is not None else st.G, ref, kind, cfg.model.latent_dim, 7, device)
    val_s = time.perf_counter() - t0

    n_train = int(args.events * (1 - cfg.data.val_fraction))
    iters = n_train // (B * cfg.train.n_critic)
    epoch_s = iters * it_s + val_s
    t = cfg.tune
    max_t = cfg.train.epochs
    mean_epochs = asha_mean_epochs(max_t, t.grace_period, t.reduction_factor) if t.scheduler == "asha" \
        else float(max_t)
    total_epochs = args.trials * mean_epochs
    print(f"config {args.config} (space {args.space}{', paper point' if paper else ''}): batch {B}, "
          f"n_critic {cfg.train.n_critic}, latent {cfg.model.latent_dim}, torch threads {args.threads}")
    print(f"iteration: {it_s:.2f} s ({B * cfg.train.n_critic / it_s:.0f} samples/s); physics check on "
          f"{cfg.train.val_events} events: {val_s:.2f} s")
    print(f"epoch over {n_train} training showers = {iters} iterations: {epoch_s / 60:.1f} min")
    print(f"ASHA (max_t {max_t}, grace {t.grace_period}, rf {t.reduction_factor:g}): "
          f"{mean_epochs:.2f} epochs per trial on average -> {total_epochs:.0f} epochs for {args.trials} trials")
    print(f"{args.trials} trials, one trial at a time on this CPU: {total_epochs * epoch_s / 86400:.1f} days")
    print(f"per core-equivalent trial slot: {total_epochs * epoch_s / 3600:.0f} trial-slot-hours "
          f"(divide by the number of concurrent trials)")
    samples = total_epochs * n_train
    print(f"work of the study: {samples:.3g} training samples + {total_epochs:.0f} physics checks; on a device "
          f"training R samples/s: {samples:.3g} / R s (+ checks)")


if __name__ == "__main__":
    main()
