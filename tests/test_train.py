"""Training loop without Ray (one process): checkpoint content, resume, non-finite guard, export, CLI errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gansim import losses
from gansim.config import Config, load_config
from gansim.data.schema import write_calo
from gansim.errors import GansimError
from gansim.train.checkpoint import (
    STATE_FILE,
    latest_checkpoint,
    list_checkpoints,
    load_state,
    resolve_checkpoint,
    save_state,
)
from gansim.train.export import export_checkpoint
from gansim.train.loop import train_local
from gansim.train.loss import unwrap
from gansim.train.trainer import Trainer

from .conftest import make_calo_arrays, run_cli

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def data_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    a = make_calo_arrays(240, seed=5)
    path = tmp_path_factory.mktemp("data") / "calo.h5"
    write_calo(path, a["energy"], a, a["overflow"], attrs={"particle": "eplus"})
    return path


def tiny_cfg(data: Path, out: Path, *overrides: str) -> Config:
    return load_config(ROOT / "configs/debug.yaml", [
        f"data.path={data}", f"run.out_dir={out}", "train.batch_size=16", "train.steps_per_epoch=3",
        "train.val_events=40", "train.log_every=1", *overrides])


def params(module: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in unwrap(module).parameters()])


def test_checkpoint_content_round_trip(data_file: Path, tmp_path: Path) -> None:
    cfg = tiny_cfg(data_file, tmp_path, "train.epochs=2", "train.num_to_keep=1")
    res = train_local(cfg, tmp_path)
    assert res["epoch"] == 2 and res["step"] == 6 and not res["diverged"]
    ckpts = list_checkpoints(tmp_path)
    assert [c.name for c in ckpts] == ["checkpoint_epoch_000002"]  # num_to_keep=1
    state = load_state(ckpts[0] / STATE_FILE)  # weights_only=True inside
    assert {"G", "D", "G_ema", "opt_g", "opt_d", "step", "epoch", "rng", "config", "metrics"} <= set(state)
    assert state["step"] == 6 and state["epoch"] == 2 and state["config"] == cfg.to_dict()
    assert state["opt_d"]["state"] and state["opt_g"]["param_groups"][0]["lr"] == cfg.train.lr_g
    assert set(state["metrics"]) >= {"epoch", "step", "fidelity", "d_loss", "g_loss", "nonfinite_steps",
                                     "samples_per_s"}
    assert (ckpts[0] / "config.yaml").is_file()
    # Rebuilding from the state gives exactly the saved weights (incl. the EMA copy, which differs from G).
    st = Trainer(cfg, torch.device("cpu"))
    st.load(state)
    assert torch.equal(params(st.G), torch.cat([v.flatten() for k, v in state["G"].items()
                                                 if k in dict(unwrap(st.G).named_parameters())]))
    assert not torch.equal(params(st.G), params(st.g_ema))
    assert st.opt_d.state_dict()["state"][0]["step"] == state["opt_d"]["state"][0]["step"]
    assert st.condition_range == state["condition_range"] and len(st.condition_range) == 2
    assert (tmp_path / "workers" / "rank0.pid").is_file()
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tb = EventAccumulator(str(tmp_path / "tb")).Reload()
    scalars = set(tb.Tags()["scalars"])
    assert {"train/d_loss", "train/g_loss", "train/d_real", "train/d_fake", "train/d_grad_norm",
            "train/g_grad_norm", "train/lr_g", "train/lr_d", "train/samples_per_s", "val/fidelity",
            "val/response_ratio", "val/E_0_ratio"} <= scalars
    assert [e.step for e in tb.Scalars("val/fidelity")] == [3, 6]
    assert len(tb.Images("showers/average")) == 2 and len(tb.Images("showers/single")) == 2


def test_resume_continues_exactly(data_file: Path, tmp_path: Path) -> None:
    """1 epoch + resume for a 2nd == 2 epochs straight (same weights bit for bit: RNG, data order, Adam, EMA)."""
    straight = train_local(tiny_cfg(data_file, tmp_path / "a", "train.epochs=2"), tmp_path / "a")
    train_local(tiny_cfg(data_file, tmp_path / "b", "train.epochs=1"), tmp_path / "b")
    resumed = train_local(tiny_cfg(data_file, tmp_path / "b", "train.epochs=2"), tmp_path / "b")
    assert resumed["restored_epoch"] == 1 and resumed["step"] == 6
    assert len(resumed["reports"]) == 1  # only epoch 2 ran
    a = load_state(latest_checkpoint(tmp_path / "a") / STATE_FILE)
    b = load_state(latest_checkpoint(tmp_path / "b") / STATE_FILE)
    for key in ("G", "D", "G_ema"):
        for name in a[key]:
            assert torch.equal(a[key][name], b[key][name]), f"{key}.{name}"
    assert straight["fidelity"] == pytest.approx(resumed["fidelity"])
    # Nothing left to do: a third call reports and returns without training.
    again = train_local(tiny_cfg(data_file, tmp_path / "b", "train.epochs=2"), tmp_path / "b")
    assert again["step"] == 6 and len(again["reports"]) == 1 and "checkpoint" not in str(again["reports"])


def test_resume_refuses_other_model(data_file: Path, tmp_path: Path) -> None:
    train_local(tiny_cfg(data_file, tmp_path, "train.epochs=1"), tmp_path)
    with pytest.raises(GansimError, match="different model config.*latent_dim.*--fresh"):
        train_local(tiny_cfg(data_file, tmp_path, "train.epochs=2", "model.latent_dim=12"), tmp_path)


def test_nonfinite_steps_skipped_and_counted(data_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"n": 0}
    real = losses.d_loss

    def flaky(name: str, r: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        calls["n"] += 1
        out = real(name, r, f)
        return out * float("nan") if calls["n"] in (2, 3) else out  # two bad D steps in a row

    monkeypatch.setattr(losses, "d_loss", flaky)
    res = train_local(tiny_cfg(data_file, tmp_path, "train.epochs=1"), tmp_path)
    assert not res["diverged"] and res["nonfinite_steps"] == 2
    state = load_state(latest_checkpoint(tmp_path) / STATE_FILE)
    assert state["metrics"]["nonfinite_steps"] == 2
    assert state["opt_d"]["state"][0]["step"] == 1  # 3 D steps attempted, 2 skipped


def test_diverging_run_stops_without_nan_checkpoint(data_file: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tiny_cfg(data_file, tmp_path, "train.epochs=3", "train.max_nonfinite=4")
    train_local(tiny_cfg(data_file, tmp_path, "train.epochs=1"), tmp_path)  # one good checkpoint first
    before = load_state(latest_checkpoint(tmp_path) / STATE_FILE)
    monkeypatch.setattr(losses, "g_loss", lambda name, f: f.mean() * float("inf"))
    monkeypatch.setattr(losses, "d_loss", lambda name, r, f: (r.mean() + f.mean()) * float("nan"))
    res = train_local(cfg, tmp_path)
    assert res["diverged"] and res["reports"][-1]["diverged"] == 1.0
    assert res["step"] == before["step"] + 2  # each step skips 2 updates (D and G): 4 in a row after 2 steps
    assert [c.name for c in list_checkpoints(tmp_path)] == ["checkpoint_epoch_000001"]
    after = load_state(latest_checkpoint(tmp_path) / STATE_FILE)
    assert all(torch.equal(after["G"][k], before["G"][k]) for k in before["G"])


def test_save_state_refuses_nan(tmp_path: Path) -> None:
    with pytest.raises(GansimError, match="non-finite"):
        save_state(tmp_path, {"G": {"w": torch.tensor([1.0, float("nan")])}, "step": 1})
    assert not (tmp_path / STATE_FILE).exists()


def test_export_from_run_dir(data_file: Path, tmp_path: Path) -> None:
    from gansim.models.artifact import load_generator

    cfg = tiny_cfg(data_file, tmp_path, "train.epochs=1")
    train_local(cfg, tmp_path)
    state = load_state(resolve_checkpoint(tmp_path))
    path, extra = export_checkpoint(tmp_path, tmp_path / "g.pt")
    art = load_generator(path)
    assert extra["ema"] and extra["epoch"] == 1 and art.kind.name == "calo" and art.latent_dim == 16
    for k, v in art.module.state_dict().items():
        assert torch.equal(v, state["G_ema"][k])
    _, raw = export_checkpoint(latest_checkpoint(tmp_path) / STATE_FILE, tmp_path / "raw.pt", use_ema=False)
    raw_art = load_generator(tmp_path / "raw.pt")
    assert not raw["ema"]
    assert all(torch.equal(v, state["G"][k]) for k, v in raw_art.module.state_dict().items())
    out = art.generate(__import__("numpy").array([10.0, 50.0]), seed=1)
    assert out["layer_1"].shape == (2, 12, 12) and (out["layer_1"] >= 0).all()


def test_export_best_takes_the_lowest_validation_score(data_file: Path, tmp_path: Path) -> None:
    cfg = tiny_cfg(data_file, tmp_path, "train.epochs=3", "train.num_to_keep=3")
    train_local(cfg, tmp_path)
    ckpts = list_checkpoints(tmp_path)
    assert len(ckpts) == 3
    for c, score in zip(ckpts, (0.30, 0.05, float("nan")), strict=True):  # epoch 2 best, epoch 3 unscored
        state = load_state(c / STATE_FILE)
        state["metrics"]["fidelity"] = score
        save_state(c, state)
    _, extra = export_checkpoint(tmp_path, tmp_path / "best.pt", best=True)
    assert extra["epoch"] == 2 and extra["source_checkpoint"].endswith(f"{ckpts[1].name}/{STATE_FILE}")
    _, latest = export_checkpoint(tmp_path, tmp_path / "latest.pt")
    assert latest["epoch"] == 3
    for c in ckpts:
        state = load_state(c / STATE_FILE)
        state["metrics"].pop("fidelity")
        save_state(c, state)
    with pytest.raises(GansimError, match="no checkpoint records a finite 'fidelity'"):
        export_checkpoint(tmp_path, tmp_path / "none.pt", best=True)


def test_resolve_checkpoint_errors(tmp_path: Path) -> None:
    with pytest.raises(GansimError, match="no checkpoint"):
        resolve_checkpoint(tmp_path)
    with pytest.raises(GansimError, match="not found"):
        resolve_checkpoint(tmp_path / "missing")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(GansimError, match="not a readable gansim checkpoint"):
        load_state(tmp_path / "junk.pt")


def test_lagan_wgan_gp_trains_and_exports(tmp_path: Path) -> None:
    """The jets path (label conditioning, class aux loss) with the gradient penalty and n_critic=2."""
    import h5py
    import numpy as np

    from gansim.models.artifact import load_generator

    rng = np.random.default_rng(0)
    with h5py.File(tmp_path / "jets.h5", "w") as f:
        img = rng.exponential(5.0, (160, 25, 25)).astype(np.float32) * (rng.random((160, 25, 25)) < 0.1)
        img[:, 12, 12] += 200.0
        f["image"], f["signal"] = img, (rng.random(160) < 0.5).astype(np.float32)
    cfg = load_config(ROOT / "configs/lagan.yaml", [
        f"data.path={tmp_path / 'jets.h5'}", f"run.out_dir={tmp_path}", "model.latent_dim=8", "model.gen_channels=4",
        "model.disc_channels=4", "model.minibatch_kernels=2", "loss.name=wgan-gp", "train.n_critic=2",
        "train.batch_size=16", "train.epochs=1", "train.steps_per_epoch=2", "train.val_events=40"])
    res = train_local(cfg, tmp_path)
    assert res["step"] == 2 and not res["diverged"] and res["nonfinite_steps"] == 0
    m = res["reports"][-1]
    assert m["gp"] > 0 and np.isfinite(m["fidelity"])
    state = load_state(latest_checkpoint(tmp_path) / STATE_FILE)
    assert state["opt_d"]["state"][0]["step"] == 4 and state["opt_g"]["state"][0]["step"] == 2  # n_critic=2
    path, _ = export_checkpoint(tmp_path, tmp_path / "g.pt")
    art = load_generator(path)
    assert art.kind.name == "jets" and art.generate(np.array([0.0, 1.0]), seed=0)["image"].shape == (2, 25, 25)


@pytest.mark.gpu
def test_train_local_on_cuda(data_file: Path, tmp_path: Path) -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    res = train_local(tiny_cfg(data_file, tmp_path, "train.epochs=1", "train.gpus_per_worker=1"), tmp_path)
    assert res["epoch"] == 1 and not res["diverged"]
    state = load_state(latest_checkpoint(tmp_path) / STATE_FILE)  # saved tensors load on CPU
    assert all(v.device.type == "cpu" for v in state["G"].values())


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    r = run_cli("train", "--config", str(ROOT / "configs/debug.yaml"), "--data", str(tmp_path / "nope.h5"),
                "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0
    assert "training data not found" in r.stderr and "nope.h5" in r.stderr
    r = run_cli("export", str(tmp_path), "--out", str(tmp_path / "g.pt"))
    assert r.returncode == 2 and "no checkpoint" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("train", "--config", str(ROOT / "configs/debug.yaml"), "--set", "train.lr_g=-1")
    assert r.returncode == 2 and "train.lr_g" in r.stderr


def test_critic_warmup_leaves_the_generator_untouched(data_file: Path, tmp_path: Path) -> None:
    cfg = tiny_cfg(data_file, tmp_path, "train.epochs=1", "train.critic_warmup=4")  # 3 steps: all warm-up
    fresh = Trainer(cfg, torch.device("cpu"))
    # parameters only: BatchNorm running statistics of G move whenever the critic phase draws fakes
    g0 = {k: v.detach().clone() for k, v in unwrap(fresh.G).named_parameters()}
    d0 = {k: v.detach().clone() for k, v in unwrap(fresh.D).named_parameters()}
    train_local(cfg, tmp_path)
    state = load_state(latest_checkpoint(tmp_path) / STATE_FILE)
    assert state["step"] == 3 and all(torch.equal(state["G"][k], v) for k, v in g0.items())
    assert any(not torch.equal(state["D"][k], v) for k, v in d0.items())
    cfg = tiny_cfg(data_file, tmp_path / "b", "train.epochs=1", "train.critic_warmup=2")  # step 3 trains G
    train_local(cfg, tmp_path / "b")
    state = load_state(latest_checkpoint(tmp_path / "b") / STATE_FILE)
    assert any(not torch.equal(state["G"][k], v) for k, v in g0.items())


@pytest.mark.parametrize(("schedule", "at_half"), [("constant", 1.0), ("linear", 0.55), ("cosine", 0.55)])
def test_lr_schedule_is_a_function_of_the_step(schedule: str, at_half: float) -> None:
    cfg = load_config(ROOT / "configs/debug.yaml", [f"train.lr_schedule={schedule}", "train.lr_final=0.1"])
    tr = Trainer(cfg, torch.device("cpu"))
    tr.step = 50
    tr.set_learning_rates(100)
    assert tr.opt_g.param_groups[0]["lr"] == pytest.approx(cfg.train.lr_g * at_half)
    assert tr.opt_d.param_groups[0]["lr"] == pytest.approx(cfg.train.lr_d * at_half)
    tr.step = 100
    tr.set_learning_rates(100)
    want = 1.0 if schedule == "constant" else 0.1
    assert tr.opt_g.param_groups[0]["lr"] == pytest.approx(cfg.train.lr_g * want)
