"""Model registry: each family builds its generator and critic by keyword from the config (and data statistics)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gansim.config import Config
from gansim.errors import GansimError
from gansim.kinds import DataKind, get_kind
from gansim.models.names import MODEL_KINDS

if TYPE_CHECKING:
    import numpy as np
    from torch import nn


@dataclass(frozen=True)
class ModelSpec:
    """How to build one registered model family.

    generator(cfg, stats) and discriminator(cfg, stats) return modules; `stats` are data statistics computed by
    `statistics(arrays)` on the training set before a fresh run (None when building a module whose state is
    loaded next, e.g. from an artefact). Families without data-dependent initialisation leave statistics None.
    """

    kind: str
    generator: Callable[[Config, dict[str, Any] | None], nn.Module]
    discriminator: Callable[[Config, dict[str, Any] | None], nn.Module]
    statistics: Callable[[dict[str, np.ndarray]], dict[str, Any]] | None = None
    extra_latent: Callable[[Config], int] | None = None  # latent values beyond model.latent_dim (calo-mlp's noise)


MODELS: dict[str, ModelSpec] = {}


def register(name: str, spec: ModelSpec) -> None:
    if MODEL_KINDS.get(name) != spec.kind:
        raise GansimError(f"model {name!r}: add it to gansim.models.names.MODEL_KINDS with kind {spec.kind!r}")
    MODELS[name] = spec


def _calogan_g(cfg: Config, stats: dict[str, Any] | None) -> nn.Module:
    from gansim.models.calogan import CaloGenerator

    m = cfg.model
    return CaloGenerator(latent_dim=m.latent_dim, base=m.gen_channels, attention=m.attention)


def _calogan_d(cfg: Config, stats: dict[str, Any] | None) -> nn.Module:
    from gansim.models.calogan import CaloDiscriminator

    m = cfg.model
    return CaloDiscriminator(base=m.disc_channels, batchnorm=m.critic_batchnorm(cfg.loss.name),
                             mbd_kernels=m.minibatch_kernels, mbd_dim=m.minibatch_dim)


def _lagan_g(cfg: Config, stats: dict[str, Any] | None) -> nn.Module:
    from gansim.models.lagan import JetGenerator

    return JetGenerator(latent_dim=cfg.model.latent_dim, base=cfg.model.gen_channels)


def _lagan_d(cfg: Config, stats: dict[str, Any] | None) -> nn.Module:
    from gansim.models.lagan import JetDiscriminator

    m = cfg.model
    return JetDiscriminator(base=m.disc_channels, batchnorm=m.critic_batchnorm(cfg.loss.name),
                            dropout=m.critic_dropout(cfg.loss.name), mbd_kernels=m.minibatch_kernels,
                            mbd_dim=m.minibatch_dim)


def _calo_mlp_g(cfg: Config, stats: dict[str, Any] | None) -> nn.Module:
    from gansim.models.calo_mlp import CaloMLPGenerator

    m = cfg.model
    return CaloMLPGenerator(latent_dim=m.latent_dim, hidden=m.gen_channels, layers=m.gen_layers, shift=m.shift,
                            hits=m.hits, quantiles=m.quantiles, stats=stats)


def _calo_mlp_d(cfg: Config, stats: dict[str, Any] | None) -> nn.Module:
    from gansim.models.calo_mlp import CaloMLPCritic

    m = cfg.model
    return CaloMLPCritic(hidden=m.disc_channels, layers=m.disc_layers, stats=stats)


def _calo_mlp_stats(arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    from gansim.models.calo_mlp_stats import fit_statistics

    return fit_statistics(arrays)


def _calo_mlp_noise(cfg: Config) -> int:
    from gansim.models.calo_mlp import noise_size

    return noise_size(cfg.model.hits)


register("calogan", ModelSpec("calo", _calogan_g, _calogan_d))
register("lagan", ModelSpec("jets", _lagan_g, _lagan_d))
register("calo-mlp", ModelSpec("calo", _calo_mlp_g, _calo_mlp_d, _calo_mlp_stats, extra_latent=_calo_mlp_noise))


def spec_of(cfg: Config) -> ModelSpec:
    try:
        return MODELS[cfg.model.name]
    except KeyError:
        raise GansimError(f"model.name: unknown model {cfg.model.name!r} (known: {', '.join(MODELS)})") from None


def model_kind(cfg: Config) -> DataKind:
    """The data kind the configured model makes."""
    return get_kind(spec_of(cfg).kind)


def latent_size(cfg: Config) -> int:
    """Length of the latent vector the generator takes (what samplers draw per event)."""
    extra = spec_of(cfg).extra_latent
    return cfg.model.latent_dim + (extra(cfg) if extra is not None else 0)


def data_statistics(cfg: Config, arrays: dict[str, np.ndarray]) -> dict[str, Any] | None:
    """The family's data statistics of a training set (None for families without any)."""
    spec = spec_of(cfg)
    return spec.statistics(arrays) if spec.statistics is not None else None


def build_generator(cfg: Config, stats: dict[str, Any] | None = None) -> nn.Module:
    return spec_of(cfg).generator(cfg, stats)


def build_discriminator(cfg: Config, stats: dict[str, Any] | None = None) -> nn.Module:
    """The critic; BatchNorm and dropout as resolved by cfg.model.critic_batchnorm / critic_dropout."""
    return spec_of(cfg).discriminator(cfg, stats)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def describe(cfg: Config) -> str:
    """One line for the start of training, e.g. 'calogan (calo): G 29.9M params, D 5.1M params, latent 1024, ...'."""
    g, d = count_parameters(build_generator(cfg)), count_parameters(build_discriminator(cfg))

    def fmt(n: int) -> str:
        return f"{n / 1e6:.2f}M" if n >= 1e5 else f"{n / 1e3:.1f}k"

    m = cfg.model
    return (f"{m.name} ({model_kind(cfg).name}): G {fmt(g)} params ({g:,}), D {fmt(d)} params ({d:,}), "
            f"latent {m.latent_dim}, loss {cfg.loss.name}")
