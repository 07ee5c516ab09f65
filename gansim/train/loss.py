"""The GAN objective of one phase, StyleGAN3-style: GanLoss.accumulate_gradients("D" | "G", ...).

DDP decisions (checked by tests/test_train_ddp.py), made here and nowhere else:
- Real and fake batches go through D in *separate* forwards (the CaloGAN / DCGAN recipe: BatchNorm and
  minibatch discrimination see pure batches). DDP is built with forward_sync_buffers=False (torch's new name for
  broadcast_buffers=False): the default re-broadcasts rank 0's BatchNorm buffers in place at every forward,
  which is wasted traffic twice per step and can trip autograd's in-place check. Running statistics are
  averaged over ranks instead (guards.sync_buffers) before validation, checkpoints and export.
- Fakes for the D phase come from the *unwrapped* G under no_grad: no graph into G, G's DDP reducer not armed.
- The G phase calls the *unwrapped* D with requires_grad off: gradients flow through D into G only, D's .grad
  stay empty, D's reducer is not armed and D's optimiser is not stepped.
- The gradient penalty differentiates the critic (through DDP) with create_graph=True and is added to the D
  loss before the single backward(), so DDP all-reduces the summed gradient once. Its interpolation weights
  are drawn for the global batch and sliced per rank, like the latents, so W ranks reproduce one rank.
- A critic with a fixed preprocessing (an `embed(x, cond)` method, no parameters) is penalised in its embedded
  input space: interpolates of embedded real and fake events go through forward(..., embedded=...).
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import nn

from gansim import losses
from gansim.config import Config
from gansim.kinds import DataKind
from gansim.train.guards import set_requires_grad

Phase = Literal["D", "G"]


def unwrap(module: nn.Module) -> nn.Module:
    return module.module if isinstance(module, nn.parallel.DistributedDataParallel) else module


class GanLoss:
    """Adversarial loss (gansim.losses), the kind's auxiliary term and the gradient penalty, for G and D."""

    def __init__(self, cfg: Config, kind: DataKind, G: nn.Module, D: nn.Module) -> None:
        self.name = cfg.loss.name
        self.gp_weight = cfg.loss.gp_weight if cfg.loss.name == "wgan-gp" else 0.0
        self.kind, self.G, self.D = kind, G, D
        self.aux_weight = kind.aux_weight(cfg.loss)

    def _aux(self, aux: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self.kind.aux_loss(aux, cond) if self.aux_weight > 0 else aux.new_zeros(())

    def accumulate_gradients(self, phase: Phase, cond: torch.Tensor, z: torch.Tensor,
                             real: dict[str, torch.Tensor] | None = None, alpha: torch.Tensor | None = None
                             ) -> dict[str, torch.Tensor]:
        """Forward + backward of one phase; returns detached statistics (no host sync)."""
        return self._d_phase(real, cond, z, alpha) if phase == "D" else self._g_phase(cond, z)

    def _d_phase(self, real: dict[str, torch.Tensor] | None, cond: torch.Tensor, z: torch.Tensor,
                 alpha: torch.Tensor | None) -> dict[str, torch.Tensor]:
        assert real is not None
        D, Dm = self.D, unwrap(self.D)
        with torch.no_grad():
            fake = unwrap(self.G)(z, cond)  # detached by construction
        embed = getattr(Dm, "embed", None)
        if embed is not None:
            with torch.no_grad():
                real_in, fake_in = embed(real, cond), embed(fake, cond)
            real_score, real_aux = D(None, cond, embedded=real_in)
            fake_score, fake_aux = D(None, cond, embedded=fake_in)
        else:
            real_score, real_aux = D(real, cond)
            fake_score, fake_aux = D(fake, cond)
        adv = losses.d_loss(self.name, real_score, fake_score)
        aux = self._aux(real_aux, cond) + self._aux(fake_aux, cond)
        loss = adv + self.aux_weight * aux
        gp = loss.new_zeros(())
        if self.gp_weight > 0:
            assert alpha is not None
            if embed is not None:
                def critic(x: torch.Tensor) -> torch.Tensor:
                    return D(None, cond, embedded=x)[0]

                gp = losses.gradient_penalty(critic, real_in, fake_in, alpha)
            else:
                keys = self.kind.event_keys

                def critic(x: torch.Tensor) -> torch.Tensor:
                    return D(self.kind.unflatten(x), cond)[0]

                gp = losses.gradient_penalty(critic, self.kind.flatten(real, keys), self.kind.flatten(fake, keys),
                                             alpha)
            loss = loss + self.gp_weight * gp
        loss.backward()  # DDP all-reduces D's gradients here
        return {"d_loss": loss.detach(), "d_adv": adv.detach(), "d_aux": aux.detach(), "gp": gp.detach(),
                "d_real": losses.readout(self.name, real_score), "d_fake": losses.readout(self.name, fake_score)}

    def _g_phase(self, cond: torch.Tensor, z: torch.Tensor) -> dict[str, torch.Tensor]:
        Dm = unwrap(self.D)
        set_requires_grad(Dm, False)
        try:
            fake = self.G(z, cond)  # through DDP: G's gradients are all-reduced
            score, aux = Dm(fake, cond)
            adv = losses.g_loss(self.name, score)
            aux_l = self._aux(aux, cond)
            loss = adv + self.aux_weight * aux_l
            loss.backward()
        finally:
            set_requires_grad(Dm, True)
        return {"g_loss": loss.detach(), "g_adv": adv.detach(), "g_aux": aux_l.detach(),
                "d_gen": losses.readout(self.name, score)}


def penalty_alpha(generator: torch.Generator, global_batch: int, rank: int, world: int,
                  device: torch.device) -> torch.Tensor:
    """Interpolation weights of the gradient penalty for this rank's rows of the global batch."""
    a = torch.rand(global_batch, generator=generator, device=generator.device)
    return a[rank::world].to(device)


def make_loss(cfg: Config, kind: DataKind, G: nn.Module, D: nn.Module) -> GanLoss:
    return GanLoss(cfg, kind, G, D)


__all__: list[Any] = ["GanLoss", "Phase", "make_loss", "penalty_alpha", "unwrap"]
