"""Model registry: build a generator / discriminator pair from the config by name ("calogan", "lagan")."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from gansim.config import Config
from gansim.errors import GansimError

# Model units = file units x DATA_SCALE: calo cells MeV -> GeV, jet pixels GeV -> 100 GeV.
DATA_SCALE: dict[str, float] = {"calo": 1e-3, "jets": 1e-2}


@dataclass(frozen=True)
class ModelSpec:
    """How to build one registered model family."""

    kind: str  # data kind: "calo" or "jets"
    generator: Callable[[Config], nn.Module]
    discriminator: Callable[[Config], nn.Module]


MODELS: dict[str, ModelSpec] = {}


def register(name: str, kind: str) -> Callable[[type], type]:
    """Class decorator: the class provides static generator(cfg) and discriminator(cfg) builders."""

    def wrap(cls: type) -> type:
        MODELS[name] = ModelSpec(kind, cls.generator, cls.discriminator)
        return cls

    return wrap


def _disc_batchnorm(cfg: Config) -> bool:
    # BatchNorm couples samples in a batch, which breaks the per-sample gradient penalty of WGAN-GP.
    return cfg.model.batchnorm and cfg.loss.name != "wgan-gp"


@register("calogan", "calo")
class _CaloGAN:
    @staticmethod
    def generator(cfg: Config) -> nn.Module:
        from gansim.models.calogan import CaloGenerator

        return CaloGenerator(cfg.model.latent_dim, cfg.model.gen_channels, cfg.model.attention)

    @staticmethod
    def discriminator(cfg: Config) -> nn.Module:
        from gansim.models.calogan import CaloDiscriminator

        return CaloDiscriminator(cfg.model.disc_channels, _disc_batchnorm(cfg),
                                 cfg.model.minibatch_kernels, cfg.model.minibatch_dim)


@register("lagan", "jets")
class _LAGAN:
    @staticmethod
    def generator(cfg: Config) -> nn.Module:
        from gansim.models.lagan import JetGenerator

        return JetGenerator(cfg.model.latent_dim, cfg.model.gen_channels)

    @staticmethod
    def discriminator(cfg: Config) -> nn.Module:
        from gansim.models.lagan import JetDiscriminator

        wgan = cfg.loss.name == "wgan-gp"
        return JetDiscriminator(cfg.model.disc_channels, _disc_batchnorm(cfg), 0.0 if wgan else 0.2,
                                cfg.model.minibatch_kernels, cfg.model.minibatch_dim)


def _spec(cfg: Config) -> ModelSpec:
    try:
        return MODELS[cfg.model.name]
    except KeyError:
        raise GansimError(f"model.name: unknown model {cfg.model.name!r} (known: {', '.join(MODELS)})") from None


def model_kind(cfg: Config) -> str:
    """"calo" for calogan, "jets" for lagan."""
    return _spec(cfg).kind


def build_generator(cfg: Config) -> nn.Module:
    return _spec(cfg).generator(cfg)


def build_discriminator(cfg: Config) -> nn.Module:
    """The critic; without BatchNorm (and dropout) when cfg.loss.name == "wgan-gp"."""
    return _spec(cfg).discriminator(cfg)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def describe(cfg: Config) -> str:
    """One line for the start of training, e.g. 'calogan (calo): G 29.9M params, D 5.1M params, latent 1024, ...'."""
    g, d = count_parameters(build_generator(cfg)), count_parameters(build_discriminator(cfg))

    def fmt(n: int) -> str:
        return f"{n / 1e6:.2f}M" if n >= 1e5 else f"{n / 1e3:.1f}k"

    m = cfg.model
    extra = f", attention {'on' if m.attention else 'off'}" if m.name == "calogan" else ""
    return (f"{m.name} ({model_kind(cfg)}): G {fmt(g)} params ({g:,}), D {fmt(d)} params ({d:,}), "
            f"latent {m.latent_dim}, loss {cfg.loss.name}{extra}")
