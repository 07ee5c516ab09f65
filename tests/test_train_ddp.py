"""GAN-under-DDP traps: 2 gloo ranks (torch.multiprocessing) running gansim.train.Trainer vs one-process references."""

from __future__ import annotations

import gc
import socket
from typing import Any

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from gansim import losses
from gansim.config import Config, load_config
from gansim.kinds.calo import CALO
from gansim.train.guards import sync_buffers
from gansim.train.loss import unwrap
from gansim.train.trainer import Trainer, train_latents

from .conftest import make_calo_arrays

CPU = torch.device("cpu")

B = 8  # per-rank batch; the global batch is 2B


def small_cfg(*overrides: str) -> Config:
    base = ["model.latent_dim=8", "model.gen_channels=3", "model.disc_channels=3", "model.minibatch_kernels=0",
            "model.batchnorm=off", "train.lr_g=1e-3", "train.lr_d=1e-3", "train.ema_decay=0.9", "run.seed=7"]
    return load_config(None, base + list(overrides))


def global_batches(n_batches: int) -> list[dict[str, torch.Tensor]]:
    a = make_calo_arrays(2 * B * n_batches, seed=3)
    keys = ("energy", "layer_0", "layer_1", "layer_2")
    return [{k: torch.from_numpy(a[k][i * 2 * B:(i + 1) * 2 * B]) for k in keys} for i in range(n_batches)]


def shard(batch: dict[str, torch.Tensor], rank: int, world: int) -> dict[str, torch.Tensor]:
    # DistributedSampler interleaving: rank r holds rows r, r+W, r+2W, ...
    return {k: v[rank::world] for k, v in batch.items()}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Recorder:
    """Stands in for an optimiser: records the (DDP-averaged) gradients instead of stepping."""

    def __init__(self, params: Any) -> None:
        self.params = list(params)
        self.grads: list[list[torch.Tensor]] = []
        self.param_groups = [{"lr": 0.0}]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        self.grads.append([p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p)
                           for p in self.params])


def flat_params(module: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in unwrap(module).parameters()])


def _worker(rank: int, world: int, port: int, jobs: list[tuple[str, str, dict]], out: str) -> None:
    from gansim.config import config_from_dict

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        results = {}
        for name, task, cfg_dict in jobs:
            results[name] = TASKS[task](config_from_dict(cfg_dict), rank, world)
        if rank == 0:
            torch.save(results, out)
        # Free every DDP reducer and wait for the peer before tearing gloo down: a rank that exits while the
        # other still holds live reducers/connections can abort in a C++ destructor ("terminate called ...").
        del results
        gc.collect()
        dist.barrier()
    finally:
        dist.destroy_process_group()


# One spawn of 2 gloo ranks runs every job (process start-up dominates on a 2-core machine).
JOBS: dict[str, tuple[str, tuple[str, ...]]] = {
    "equal": ("iteration", ("train.n_critic=2",)),
    "gp": ("d_grads", ("loss.name=wgan-gp", "model.minibatch_kernels=3", "model.minibatch_dim=2")),
    "bn": ("d_grads", ("loss.name=non-saturating", "model.batchnorm=on", "model.minibatch_kernels=3")),
    "g": ("g_grads", ("model.batchnorm=on", "model.minibatch_kernels=3")),
    "nan": ("nan_rank1", ()),
    "buffers": ("buffers", ("model.batchnorm=on",)),
}


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("ddp") / "results.pt"
    jobs = [(name, task, small_cfg(*ov).to_dict()) for name, (task, ov) in JOBS.items()]
    mp.spawn(_worker, args=(2, free_port(), jobs, str(out)), nprocs=2, join=True)
    return torch.load(out, weights_only=True)


# ---- tasks executed on every rank (and, with rank=0 / world=1, as the one-process reference) ----

def strip_batchnorm(module: torch.nn.Module) -> torch.nn.Module:
    """BatchNorm → Identity (CPU DDP keeps per-worker batch statistics: SyncBatchNorm is GPU-only in torch)."""
    for name, child in module.named_children():
        if isinstance(child, torch.nn.modules.batchnorm._BatchNorm):
            setattr(module, name, torch.nn.Identity())
        else:
            strip_batchnorm(child)
    return module


def task_iteration(cfg: Config, rank: int, world: int) -> dict[str, Any]:
    """Two full iterations (n_critic D steps + 1 G step each) on this rank's shard of the global batches."""
    import gansim.models.registry as registry

    build = registry.build_generator
    registry.build_generator = lambda c, s=None: strip_batchnorm(build(c, s))  # type: ignore[assignment]
    try:
        tr = Trainer(cfg, CPU, rank, world)
    finally:
        registry.build_generator = build  # type: ignore[assignment]
    gb = global_batches(2 * cfg.train.n_critic)
    for it in range(2):
        chunk = gb[it * cfg.train.n_critic:(it + 1) * cfg.train.n_critic]
        tr.train_step([shard(b, rank, world) for b in chunk])
    return {"G": flat_params(tr.G), "D": flat_params(tr.D), "ema": flat_params(tr.g_ema), "step": tr.step}


def _grads(cfg: Config, rank: int, world: int, which: str, nan_on_rank: int = -1) -> dict[str, Any]:
    """Gradients of one D step or one G step from the initial state, recorded instead of applied."""
    tr = Trainer(cfg, CPU, rank, world)
    rec_d, rec_g = Recorder(tr.D.parameters()), Recorder(tr.G.parameters())
    tr.opt_d, tr.opt_g = rec_d, rec_g  # type: ignore[assignment]
    g_before = flat_params(tr.G).clone()
    x, cond = CALO.to_model(shard(global_batches(1)[0], rank, world), CPU)
    original = losses.d_loss
    if nan_on_rank == rank:  # a NaN that still has a graph, as a real overflow would
        losses.d_loss = lambda n, r, f: (r.mean() + f.mean()) * float("nan")  # type: ignore[assignment]
    if which == "d":
        try:
            res = tr.phase("D", cond, x, 0)
        finally:
            losses.d_loss = original
        g_grads = [p.grad for p in unwrap(tr.G).parameters()]
        out = {"grads": rec_d.grads, "skipped": res is None, "g_grad_none": all(g is None for g in g_grads),
               "g_unchanged": bool(torch.equal(flat_params(tr.G), g_before))}
    else:
        d_before = flat_params(tr.D).clone()
        res = tr.phase("G", cond, None, 1)
        out = {"grads": rec_g.grads, "skipped": res is None,
               "d_grad_none": all(p.grad is None for p in unwrap(tr.D).parameters()),
               "d_unchanged": bool(torch.equal(flat_params(tr.D), d_before)), "d_steps": len(rec_d.grads),
               "d_requires_grad": all(p.requires_grad for p in unwrap(tr.D).parameters())}
    sync_buffers(unwrap(tr.D))
    out["d_buffers"] = [b.clone() for b in unwrap(tr.D).buffers()]
    return out


def task_d_grads(cfg: Config, rank: int, world: int) -> dict[str, Any]:
    return _grads(cfg, rank, world, "d")


def task_g_grads(cfg: Config, rank: int, world: int) -> dict[str, Any]:
    return _grads(cfg, rank, world, "g")


def task_nan_rank1(cfg: Config, rank: int, world: int) -> dict[str, Any]:
    return _grads(cfg, rank, world, "d", nan_on_rank=1)


def task_buffers(cfg: Config, rank: int, world: int) -> dict[str, Any]:
    """BatchNorm on: after a step each rank's running stats differ; after sync_buffers they are equal."""
    tr = Trainer(cfg, CPU, rank, world)
    gb = global_batches(1)
    tr.train_step([shard(gb[0], rank, world)])
    mine = torch.cat([b.float().flatten() for b in unwrap(tr.D).buffers()])
    gathered = [torch.zeros_like(mine) for _ in range(world)]
    dist.all_gather(gathered, mine)
    sync_buffers(unwrap(tr.D))
    synced = torch.cat([b.float().flatten() for b in unwrap(tr.D).buffers()])
    after = [torch.zeros_like(synced) for _ in range(world)]
    dist.all_gather(after, synced)
    return {"before": gathered, "after": after, "mean": torch.stack(gathered).mean(0)}


TASKS = {"iteration": task_iteration, "d_grads": task_d_grads, "g_grads": task_g_grads,
         "nan_rank1": task_nan_rank1, "buffers": task_buffers}


def reference_grads(cfg: Config, which: str, world: int = 2) -> list[torch.Tensor]:
    """What DDP must produce: the mean over shards of per-shard gradients, computed in one process."""
    per_shard = [_grads(cfg, r, world, which)["grads"][0] for r in range(world)]
    return [torch.stack(gs).mean(0) for gs in zip(*per_shard, strict=True)]


def assert_grads_close(got: list[torch.Tensor], want: list[torch.Tensor]) -> None:
    assert len(got) == len(want)
    g, w = torch.cat([t.flatten() for t in got]), torch.cat([t.flatten() for t in want])
    assert torch.isfinite(g).all() and w.abs().max() > 0
    torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-6)


def test_two_workers_equal_one_worker_on_global_batch(two_ranks: dict[str, Any]) -> None:
    """Without batch-coupled layers (BatchNorm, minibatch discrimination) D and G are per-sample, so DDP over
    2 ranks with batch B must give the same parameters as one process with batch 2B (n_critic=2 D steps + 1 G
    step, twice, + EMA). With them, each rank normalises its own shard (standard DDP), covered below."""
    cfg = small_cfg(*JOBS["equal"][1])
    two = two_ranks["equal"]
    one = task_iteration(cfg, 0, 1)
    init = Trainer(cfg, CPU)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in init.G.modules())  # stripped in the tasks only
    strip_batchnorm(init.G)
    assert two["step"] == one["step"] == 2
    for key in ("G", "D", "ema"):
        torch.testing.assert_close(two[key], one[key], rtol=0, atol=2e-5)
    # ...and training moved the weights far more than the tolerance (the check is not vacuous).
    assert (one["G"] - flat_params(init.G)).abs().max() > 1e-3
    assert (one["D"] - flat_params(init.D)).abs().max() > 1e-3


@pytest.mark.parametrize("job", ["gp", "bn"])  # gradient penalty + MBD; BatchNorm with 2 forwards + MBD
def test_ddp_d_step_gradients_match_shard_mean(two_ranks: dict[str, Any], job: str) -> None:
    """Double backward (create_graph) and separate real/fake forwards work under DDP/gloo and give the shard
    mean of the one-process gradients; the D step leaves G untouched."""
    cfg = small_cfg(*JOBS[job][1])
    two = two_ranks[job]
    assert not two["skipped"] and two["g_grad_none"] and two["g_unchanged"]
    assert_grads_close(two["grads"][0], reference_grads(cfg, "d"))


def test_ddp_g_step_does_not_touch_d(two_ranks: dict[str, Any]) -> None:
    cfg = small_cfg(*JOBS["g"][1])
    two = two_ranks["g"]
    assert not two["skipped"]
    assert two["d_grad_none"] and two["d_unchanged"] and two["d_steps"] == 0 and two["d_requires_grad"]
    assert_grads_close(two["grads"][0], reference_grads(cfg, "g"))


def test_nan_on_one_rank_skips_step_on_all_ranks(two_ranks: dict[str, Any]) -> None:
    """A NaN loss on rank 1 only: the all-reduced flag makes rank 0 skip too (no optimiser step recorded)."""
    two = two_ranks["nan"]
    assert two["skipped"] is True
    assert two["grads"] == []


def test_batchnorm_buffers_synced_across_ranks(two_ranks: dict[str, Any]) -> None:
    res = two_ranks["buffers"]
    before, after = res["before"], res["after"]
    assert not torch.allclose(before[0], before[1])  # different shards → different running stats
    torch.testing.assert_close(after[0], after[1], rtol=0, atol=0)
    torch.testing.assert_close(after[0], res["mean"], rtol=1e-6, atol=1e-7)


def test_latents_independent_of_worker_count() -> None:
    one = train_latents(5, 3, 1, 6, 4, rank=0, world=1, device=CPU)
    r0 = train_latents(5, 3, 1, 3, 4, rank=0, world=2, device=CPU)
    r1 = train_latents(5, 3, 1, 3, 4, rank=1, world=2, device=CPU)
    torch.testing.assert_close(one[0::2], r0)
    torch.testing.assert_close(one[1::2], r1)
    other_step = train_latents(5, 4, 1, 6, 4, rank=0, world=1, device=CPU)
    assert not torch.allclose(one, other_step)
    assert abs(float(np.mean(train_latents(1, 0, 0, 256, 64, 0, 1, CPU).numpy()))) < 0.02
