"""`gansim produce` on one process: plan, seeding, shards + VDS, resume, integrity, errors, storage options."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from gansim.errors import GansimError
from gansim.produce.conditioning import load_energy_file, parse_energy
from gansim.produce.plan import Plan, assign_chunks
from gansim.produce.run import make_run, produce
from gansim.produce.verify import deep_verify
from tests.produce_helpers import REPO, chunk_sums, clean_env, fault_cmd, make_generator, read_all

N, C = 2500, 1000  # 3 chunks, the last one shorter


@pytest.fixture(scope="module")
def gen(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_generator(tmp_path_factory.mktemp("gen") / "generator.pt")


@pytest.fixture(scope="module")
def reference(gen: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ref") / "run"
    produce(opts(gen, out))
    return out


def opts(gen: Path, out: Path, **kw: object) -> Any:
    base = {"events": N, "chunk_size": C, "batch_size": 256, "seed": 5, "progress": False}
    base.update(kw)
    return make_run(gen, out, **base)


def plan(**kw: object) -> Plan:
    base = {"kind": "calo", "particle": "eplus", "events": 10, "chunk_size": 4, "seed": 1,
            "condition": "uniform:1,100", "condition_sha256": "", "batch_size": 2, "layout": "shards",
            "dtype": "float32", "precision": "lossless", "compression": "gzip", "h5_rows": 256, "files_per_dir": 1000,
            "generator_sha256": "x", "device_type": "cpu", "amp": False, "compile": False}
    base.update(kw)
    return Plan(**base)  # type: ignore[arg-type]


def test_plan_chunks_and_round_robin() -> None:
    p = plan()
    assert p.n_chunks == 3
    assert [p.chunk_range(k) for k in range(3)] == [(0, 4), (4, 8), (8, 10)]
    for size in (1, 2, 3, 5):
        dealt = [assign_chunks(list(range(7)), r, size) for r in range(size)]
        assert sorted(k for d in dealt for k in d) == list(range(7))
    assert assign_chunks([0, 2, 3, 5, 6], 1, 2) == [2, 5]
    assert plan(seed=2).differences(p) == ["seed: 1 -> 2"]
    assert plan(seed=2).plan_id() != p.plan_id()
    with pytest.raises(GansimError, match="--layout"):
        plan(layout="tape")


def test_streams_depend_on_seed_purpose_and_index_only() -> None:
    """The one seeding rule: SeedSequence([seed, purpose, index...])."""
    import torch

    from gansim.seeding import Purpose, numpy_rng, torch_generator

    a, b = numpy_rng(3, Purpose.CONDITION, 7), numpy_rng(3, Purpose.CONDITION, 7)
    assert np.array_equal(a.random(5), b.random(5))
    ta, tb = torch_generator(3, Purpose.GENERATE, 7), torch_generator(3, Purpose.GENERATE, 7)
    assert torch.equal(torch.randn(4, generator=ta), torch.randn(4, generator=tb))
    x = numpy_rng(3, Purpose.CONDITION, 7).random(5)
    for other in (numpy_rng(3, Purpose.CONDITION, 8), numpy_rng(4, Purpose.CONDITION, 7),
                  numpy_rng(3, Purpose.SPLIT, 7)):
        assert not np.array_equal(x, other.random(5))

def test_energy_specs(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    e = parse_energy("uniform:10,20").sample(rng, 1000)
    assert e.dtype == np.float32 and e.min() >= 10 and e.max() < 20
    e = parse_energy("log-uniform:1,100").sample(rng, 20000)
    assert abs(np.median(e) - 10.0) < 1.0  # log-uniform over 1..100 has median 10
    assert np.all(parse_energy("fixed:50").sample(rng, 3) == 50)
    for bad in ("uniform:5", "uniform:9,3", "gauss:1,2", "fixed:-1", "uniform:a,b"):
        with pytest.raises(GansimError, match="--energy"):
            parse_energy(bad)
    np.save(tmp_path / "e.npy", np.array([3.0, 7.0]))
    (tmp_path / "e.txt").write_text("3\n7\n")
    with h5py.File(tmp_path / "e.h5", "w") as f:
        f["energy"] = np.array([[3.0], [7.0]])
    for name in ("e.npy", "e.txt", "e.h5"):
        spec = load_energy_file(tmp_path / name)
        drawn = spec.sample(np.random.default_rng(1), 400)
        assert set(np.unique(drawn)) == {3.0, 7.0}
    (tmp_path / "neg.txt").write_text("3\n-1\n")
    with pytest.raises(GansimError, match="positive"):
        load_energy_file(tmp_path / "neg.txt")
    with pytest.raises(GansimError, match="not found"):
        load_energy_file(tmp_path / "missing.npy")


def test_shards_vds_and_manifest(reference: Path, gen: Path) -> None:
    ds = reference / "dataset.h5"
    with h5py.File(ds, "r") as f:
        assert f["layer_0"].shape == (N, 3, 96) and f["layer_1"].shape == (N, 12, 12)
        assert f["layer_2"].shape == (N, 12, 6) and f["energy"].shape == (N, 1) and f["overflow"].shape == (N, 3)
        assert f["layer_0"].is_virtual
        assert f.attrs["particle"] == "eplus" and int(f.attrs["seed"]) == 5
    data = read_all(ds)
    assert np.isfinite(data["layer_0"]).all() and (data["layer_0"] >= 0).all()
    assert 1 <= data["energy"].min() and data["energy"].max() <= 100
    # chunk 1 in the VDS equals chunk 1 regenerated from (seed, 1) alone
    from gansim.models.artifact import load_generator
    from gansim.produce.run import build_plan
    from gansim.produce.sampler import ChunkSampler

    art = load_generator(gen)
    p, energy = build_plan(opts(gen, reference), art)
    again = ChunkSampler(art, p, energy).generate(1)
    assert np.array_equal(again["layer_1"], data["layer_1"][1000:2000])
    m = json.loads((reference / "manifest.json").read_text())
    assert m["complete"] and len(m["chunks"]) == 3 and sum(c["events"] for c in m["chunks"].values()) == N
    assert m["generator"]["sha256"] == art.sha256 and m["plan"]["seed"] == 5
    assert deep_verify(ds)["chunks_verified"] == 3


def test_vds_reads_with_plain_h5py_after_moving(reference: Path, tmp_path: Path) -> None:
    moved = tmp_path / "elsewhere" / "copy"
    shutil.copytree(reference, moved)
    code = ("import sys, h5py, numpy; f = h5py.File(sys.argv[1], 'r'); x = f['layer_0'][:]; "
            "print(x.shape, int(numpy.isnan(x).sum()), repr(float(f['layer_1'][2499].sum())))")
    out = subprocess.run([sys.executable, "-S", "-c", code, str(moved / "dataset.h5")], capture_output=True,
                         text=True, cwd="/", env={"PYTHONPATH": os.pathsep.join(p for p in sys.path if p)})
    assert out.returncode == 0, out.stderr
    want = float(read_all(reference / "dataset.h5")["layer_1"][2499].sum())
    assert out.stdout.strip() == f"(2500, 3, 96) 0 {want!r}"


def test_inspect_deep_cli(reference: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from gansim.cli import main

    assert main(["inspect", str(reference / "dataset.h5"), "--deep"]) == 0
    out = capsys.readouterr().out
    assert "events     2500" in out and "3 chunks verified OK" in out and "virtual dataset" in out


def test_deep_verify_detects_corruption(reference: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    shutil.copytree(reference, bad)
    with h5py.File(bad / "chunks" / "00000" / "chunk_00000002.h5", "r+") as f:
        f["layer_2"][3, 0, 0] += 1.0
    with pytest.raises(GansimError, match="chunk 2: checksum mismatch"):
        deep_verify(bad / "dataset.h5")


def test_kill_then_resume_is_identical(reference: Path, gen: Path, tmp_path: Path) -> None:
    out = tmp_path / "killed"
    cmd = fault_cmd("kill:0:1", "produce", "-g", str(gen), "--events", str(N), "--chunk-size", str(C), "--batch-size",
                    "256", "--seed", "5", "--out", str(out), "--no-progress")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=clean_env(), cwd=REPO)
    assert proc.returncode == -9, proc.stderr
    names = sorted(p.name for p in (out / "chunks" / "00000").iterdir())
    # chunk 0 committed, chunk 1 fully written under its temporary name when the process died
    assert names[-1] == "chunk_00000000.h5" and len(names) == 2 and names[0].endswith(".tmp")
    assert not (out / "dataset.h5").exists()
    res = produce(opts(gen, out))
    assert res["made"] == N - C  # only the missing chunks were made
    assert not list((out / "chunks").glob("*/.*.tmp"))
    assert chunk_sums(out) == chunk_sums(reference)
    a, b = read_all(out / "dataset.h5"), read_all(reference / "dataset.h5")
    assert all(np.array_equal(a[k], b[k]) for k in b)
    # a complete run re-run is a no-op that rebuilds nothing new
    assert produce(opts(gen, out))["made"] == 0


def test_different_parameters_refused_unless_overwrite(reference: Path, gen: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    shutil.copytree(reference, out)
    with pytest.raises(GansimError, match=r"different production run \(seed: 5 -> 6\).*--overwrite"):
        produce(opts(gen, out, seed=6))
    res = produce(opts(gen, out, seed=6, events=1200, overwrite=True))
    assert res["events"] == 1200 and len(list((out / "chunks").glob("*/chunk_*.h5"))) == 2


def test_out_of_space_stops_cleanly_and_resumes(reference: Path, gen: Path, tmp_path: Path) -> None:
    from gansim.produce import hooks
    from tests.produce_helpers import install_fault

    install_fault("enospc:0:1")  # the second commit fails with errno 28
    out = tmp_path / "full"
    try:
        with pytest.raises(GansimError, match=r"chunk 1 .*No space left on device.*1/3 chunks.*rerun the same command"):
            produce(opts(gen, out))
    finally:
        hooks.HOOKS.clear()
    assert [p.name for p in (out / "chunks" / "00000").iterdir()] == ["chunk_00000000.h5"]
    produce(opts(gen, out))
    assert chunk_sums(out) == chunk_sums(reference)


def test_unusable_output_directory(gen: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(GansimError, match="cannot create the output directory"):
        produce(opts(gen, blocker / "sub"))
    with pytest.raises(GansimError, match="exists and is not a directory"):
        produce(opts(gen, blocker))


def test_dry_run_writes_nothing(gen: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "dry"
    res = produce(opts(gen, out, events=10**9, chunk_size=100_000, dry_run=True))
    assert not out.exists()
    text = capsys.readouterr().out
    assert "10,000 chunk files of 100,000 events" in text and "B/event measured" in text and "wall time" in text
    assert res["chunks"] == 10_000 and 100 < res["bytes_per_event"] < 3000 and res["events_per_s"] > 0


def test_particle_and_option_errors(gen: Path, tmp_path: Path) -> None:
    with pytest.raises(GansimError, match="--particle gamma does not match"):
        produce(opts(gen, tmp_path / "a", particle="gamma"))
    with pytest.raises(GansimError, match="--energy"):
        produce(opts(gen, tmp_path / "b", energy="uniform:100,1"))
    with pytest.raises(GansimError, match="generator file not found"):
        produce(opts(tmp_path / "nope.pt", tmp_path / "c"))


@pytest.mark.parametrize("events", ["0", "-5", "1.5", "lots", "1e-3"])
def test_bad_event_counts_fail_clearly(events: str, gen: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    from gansim.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["produce", "-g", str(gen), "--events", events, "--out", str(tmp_path / "x")])
    assert exc.value.code == 2 and "--events" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_single_layout_needs_parallel_h5py(gen: Path, tmp_path: Path) -> None:
    if h5py.get_config().mpi:
        pytest.skip("this h5py has MPI; the phdf5 tests cover --layout single")
    with pytest.raises(GansimError, match="setup_phdf5.sh"):
        produce(opts(gen, tmp_path / "s", layout="single"))
    assert not (tmp_path / "s").exists()


def test_storage_options(reference: Path, gen: Path, tmp_path: Path) -> None:
    ref = read_all(reference / "dataset.h5")
    ref_bytes = json.loads((reference / "manifest.json").read_text())
    size = {"gzip": sum(c["bytes"] for c in ref_bytes["chunks"].values())}
    for comp, dtype in (("none", "float32"), ("lzf", "float32"), ("zstd", "float32"), ("gzip", "float16")):
        out = tmp_path / f"{comp}-{dtype}"
        res = produce(opts(gen, out, compression=comp, dtype=dtype))
        data = read_all(out / "dataset.h5")
        size[f"{comp}-{dtype}"] = res["bytes"]
        if dtype == "float32":
            assert all(np.array_equal(data[k], ref[k]) for k in ref)  # lossless filters: same values
        else:
            assert data["layer_0"].dtype == np.float16 and data["energy"].dtype == np.float32
            np.testing.assert_allclose(data["layer_0"], ref["layer_0"], rtol=1e-3, atol=1e-3)
        assert deep_verify(out)["chunks_verified"] == 3
    assert size["none-float32"] > size["gzip"] and size["gzip-float16"] < size["gzip"]


def test_energy_file_conditioning(gen: Path, tmp_path: Path) -> None:
    np.save(tmp_path / "e.npy", np.array([10.0, 20.0, 40.0], dtype=np.float32))
    res = produce(opts(gen, tmp_path / "ef", events=300, chunk_size=100, energy_file=tmp_path / "e.npy"))
    e = read_all(Path(res["dataset"]))["energy"].ravel()
    assert set(np.unique(e)) == {10.0, 20.0, 40.0}


def test_jet_generator_labels(tmp_path: Path) -> None:
    jet_gen = make_generator(tmp_path / "lagan.pt", kind="jets")
    res = produce(opts(jet_gen, tmp_path / "jets", events=2000, chunk_size=700, signal_fraction=0.25))
    data = read_all(Path(res["dataset"]))
    assert data["image"].shape == (2000, 25, 25) and set(np.unique(data["signal"])) == {0.0, 1.0}
    assert abs(data["signal"].mean() - 0.25) < 0.04
    with pytest.raises(GansimError, match="--energy"):
        produce(opts(jet_gen, tmp_path / "j2", energy="fixed:5"))
