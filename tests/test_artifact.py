"""Generator artefact and the one Sampler: round trip, deterministic split-independent generation, file units."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from gansim.config import config_from_dict
from gansim.errors import GansimError
from gansim.kinds import get_kind
from gansim.models.artifact import FORMAT, load_generator, save_generator
from gansim.models.registry import build_generator
from gansim.models.sampler import LATENT_BLOCK, Sampler
from gansim.seeding import Purpose

TINY = {"latent_dim": 8, "gen_channels": 8, "disc_channels": 8, "minibatch_kernels": 3, "minibatch_dim": 2}


def tiny(name: str = "calogan"):
    particle = "jets" if name == "lagan" else "eplus"
    return config_from_dict({"model": {"name": name, **TINY}, "data": {"particle": particle}})


def trained_like(cfg):
    """A generator whose BatchNorm running statistics are not the defaults."""
    torch.manual_seed(0)
    g = build_generator(cfg).train()
    with torch.no_grad():
        cond = torch.rand(32) * 100 if cfg.model.name == "calogan" else torch.randint(0, 2, (32,)).float()
        g(torch.randn(32, cfg.model.latent_dim), cond)
    return g.eval()


@pytest.fixture
def calo_artifact(tmp_path: Path):
    cfg = tiny()
    g = trained_like(cfg)
    path = save_generator(tmp_path / "sub" / "g.pt", g, cfg, extra={"epoch": 3, "fidelity": 0.5, "tags": ["a"]})
    return g, cfg, path


def test_round_trip_identical_outputs(calo_artifact):
    g, cfg, path = calo_artifact
    art = load_generator(path)
    assert art.kind.name == "calo" and art.latent_dim == 8 and art.config == cfg and not art.module.training
    assert art.extra == {"epoch": 3, "fidelity": 0.5, "tags": ["a"]}
    assert art.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    z, e = torch.randn(10, 8), torch.rand(10) * 100
    with torch.no_grad():
        want = g(z, e)
    got = art.sampler.forward(z, e)
    for k in want:
        torch.testing.assert_close(got[k], want[k], rtol=0, atol=0)
    assert not any(p.name.endswith(".tmp") for p in path.parent.iterdir())


def test_generate_is_deterministic_and_batch_size_independent(calo_artifact):
    _, _, path = calo_artifact
    art = load_generator(path)
    energies = np.linspace(1, 100, 300).astype(np.float32)
    a = art.generate(energies, seed=5, batch_size=1024)
    b = art.generate(energies, seed=5, batch_size=7)
    c = art.generate(energies, seed=6, batch_size=1024)
    assert set(a) == {"energy", "layer_0", "layer_1", "layer_2", "overflow"}
    for k in a:
        assert a[k].dtype == np.float32
        # same z per event; only float32 GEMM blocking differs with the batch size (MeV values up to ~50)
        np.testing.assert_allclose(a[k], b[k], rtol=1e-4, atol=1e-3)
    assert not np.allclose(a["layer_1"], c["layer_1"])
    np.testing.assert_array_equal(a["energy"][:, 0], energies)
    assert a["overflow"].shape == (300, 3) and not a["overflow"].any()
    assert all((a[k] >= 0).all() for k in ("layer_0", "layer_1", "layer_2"))


def test_latent_draw_is_split_independent():
    s = Sampler(torch.nn.Identity(), get_kind("calo"), 4)
    whole = s.latents(3, Purpose.GENERATE, 0, LATENT_BLOCK + 100)
    parts = torch.cat([s.latents(3, Purpose.GENERATE, 0, 10), s.latents(3, Purpose.GENERATE, 10, LATENT_BLOCK + 5),
                       s.latents(3, Purpose.GENERATE, LATENT_BLOCK + 5, LATENT_BLOCK + 100)])
    assert torch.equal(whole, parts) and whole.shape == (LATENT_BLOCK + 100, 4)
    assert not torch.equal(s.latents(4, Purpose.GENERATE, 0, 10), whole[:10])  # another seed
    assert not torch.equal(s.latents(3, Purpose.VALIDATE, 0, 10), whole[:10])  # another purpose
    assert torch.equal(s.latents(3, Purpose.GENERATE, 5, 5), torch.empty(0, 4))


def test_file_units_and_explicit_z(calo_artifact):
    _, _, path = calo_artifact
    art = load_generator(path)
    z = np.random.default_rng(0).standard_normal((4, 8)).astype(np.float32)
    e = np.array([10.0, 20.0, 30.0, 40.0], np.float32)
    out = art.generate(e, z=z)
    model = art.sampler.forward(torch.from_numpy(z), torch.from_numpy(e))
    np.testing.assert_allclose(out["layer_2"], model["layer_2"].numpy() * 1000.0, rtol=1e-6)  # GeV -> MeV
    with pytest.raises(GansimError, match="z has shape"):
        art.generate(e, z=z[:3])
    assert art.generate(np.zeros(0, np.float32))["layer_0"].shape == (0, 3, 96)


def test_jets_artifact(tmp_path: Path):
    cfg = tiny("lagan")
    path = save_generator(tmp_path / "jets.pt", trained_like(cfg), cfg)
    art = load_generator(path)
    labels = np.array([0, 1, 1, 0, 1], np.float32)
    out = art.generate(labels, seed=1, batch_size=2)
    assert art.kind.name == "jets" and set(out) == {"image", "signal"}
    assert out["image"].shape == (5, 25, 25) and out["image"].dtype == np.float32 and (out["image"] >= 0).all()
    np.testing.assert_array_equal(out["signal"], labels)
    model = art.sampler.forward(art.sampler.latents(1, Purpose.GENERATE, 0, 5), torch.from_numpy(labels))["image"]
    np.testing.assert_allclose(out["image"], model.numpy() * 100.0, rtol=1e-5, atol=1e-6)  # 100 GeV -> GeV


def test_extra_must_be_plain(tmp_path: Path):
    cfg = tiny()
    with pytest.raises(GansimError, match="extra.arr"):
        save_generator(tmp_path / "g.pt", build_generator(cfg), cfg, extra={"arr": np.zeros(2)})
    assert not list(tmp_path.iterdir())


def _bad(tmp_path: Path, payload) -> Path:
    path = tmp_path / "bad.pt"
    torch.save(payload, path)
    return path


def test_bad_files(tmp_path: Path, calo_artifact):
    g, cfg, good = calo_artifact
    with pytest.raises(GansimError, match="not found"):
        load_generator(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"this is not a torch file")
    with pytest.raises(GansimError, match="not a gansim generator"):
        load_generator(junk)
    with pytest.raises(GansimError, match="not a gansim generator"):
        load_generator(_bad(tmp_path, {"weights": torch.zeros(2)}))
    with pytest.raises(GansimError, match="not a gansim generator"):
        load_generator(_bad(tmp_path, {"format": "other/1"}))
    payload = torch.load(good, weights_only=True)
    with pytest.raises(GansimError, match="unsupported generator format 'gansim-generator/99'"):
        load_generator(_bad(tmp_path, {**payload, "format": "gansim-generator/99"}))
    stale = {**payload, "config": {**payload["config"], "model": {**payload["config"]["model"], "widgets": 3}}}
    with pytest.raises(GansimError, match="no longer validates.*widgets"):
        load_generator(_bad(tmp_path, stale))
    wrong = {**payload, "config": {**payload["config"], "model": {**payload["config"]["model"], "latent_dim": 9}}}
    with pytest.raises(GansimError, match="weights do not match"):
        load_generator(_bad(tmp_path, wrong))
    with pytest.raises(GansimError, match="weights do not match"):
        load_generator(_bad(tmp_path, {**payload, "state_dict": {"x": torch.zeros(1)}}))
    with pytest.raises(GansimError, match="not a gansim generator"):  # arbitrary pickled objects are refused
        load_generator(_bad(tmp_path, {"format": FORMAT, "obj": Path("x")}))
    assert payload["format"] == FORMAT


def test_extrapolation_counts_only_beyond_five_percent() -> None:
    from gansim.kinds.base import extrapolates

    assert not extrapolates(1.0, 100.0, (1.0063, 99.9925))  # a held-out sample's extremes: not extrapolation
    assert not extrapolates(0.96, 104.9, (1.0, 100.0))
    assert extrapolates(0.94, 50.0, (1.0, 100.0)) and extrapolates(10.0, 106.0, (1.0, 100.0))
    assert not extrapolates(0.1, 1e4, None)
