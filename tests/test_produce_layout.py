"""The shards layout at scale: fan-out directories, per-directory VDS indices, open_dataset, and no silent fill
values with thousands of sources under a low `ulimit -n` (subprocesses with lowered RLIMIT_NOFILE)."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from gansim.errors import GansimError
from gansim.produce.layout import auto_chunk_size
from gansim.produce.reader import open_dataset
from tests.produce_helpers import REPO, clean_env, make_generator, synthetic_run

PROBE = r"""
import json, os, resource, sys
soft, hard = int(sys.argv[2]), int(sys.argv[3])
resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
import h5py, numpy as np
path, mode, out = sys.argv[1], sys.argv[4], {}
want = None
if mode == "plain-whole":
    with h5py.File(path + "/dataset.h5", "r") as f:
        x = f["layer_0"][:, 0, 0]
    out["nan"] = int(np.isnan(x).sum())
elif mode == "plain-slices":
    with h5py.File(path + "/dataset.h5", "r") as f:
        x = np.concatenate([f["layer_0"][s:s + 300, 0, 0] for s in range(0, f["layer_0"].shape[0], 300)])
    out["nan"], out["right"] = int(np.isnan(x).sum()), bool((x == np.arange(1, len(x) + 1)).all())
elif mode == "gansim-validate":
    from gansim.data.schema import validate
    from gansim.errors import GansimError
    try:
        s = validate(path + "/dataset.h5")
        with h5py.File(path + "/dataset.h5", "r") as f:  # what the training / evaluation loaders then do
            x = f["layer_0"][:, 0, 0]
        out["nan"], out["events"] = int(np.isnan(x).sum()), s.n_events
    except GansimError as exc:
        out["error"] = str(exc)
elif mode == "open-dataset":
    import gansim.produce.reader as r
    with r.open_dataset(path) as ds:
        x = np.concatenate([b["layer_0"][:, 0, 0] for b in ds.iter_blocks(4000, ["layer_0"])])
        out["fds"] = len(os.listdir("/proc/self/fd"))
    out["nan"], out["right"] = int(np.isnan(x).sum()), bool((x == np.arange(1, len(x) + 1)).all())
out["soft"] = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
print(json.dumps(out))
"""


def probe(run: Path, soft: int, hard: int, mode: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", PROBE, str(run), str(soft), str(hard), mode], capture_output=True,
                          text=True, env=clean_env(), cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def check_no_silent_fill(run: Path, files: int, limit: int) -> None:
    # the hazard itself: plain h5py, one whole-dataset read, too few descriptors -> NaN rows and no error
    assert probe(run, limit, limit, "plain-whole")["nan"] > 0
    # plain h5py reading in slices of a few files each is right (what the README tells plain readers)
    assert probe(run, limit, limit, "plain-slices") == {"nan": 0, "right": True, "soft": limit}
    # gansim's readers refuse clearly when the hard limit is too low...
    err = probe(run, limit, limit, "gansim-validate")["error"]
    assert f"({files:,} source files + " in err and "ulimit -n" in err and "open_dataset" in err
    # ...and raise the soft limit themselves when the hard limit allows it: then the whole read is complete
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard < files + 100:
        pytest.skip(f"the hard open-file limit here ({hard}) is below {files + 100}")
    res = probe(run, limit, hard, "gansim-validate")
    assert res["nan"] == 0 and res["soft"] > files
    # open_dataset never needs more than a handful of files open
    res = probe(run, limit, limit, "open-dataset")
    assert res["nan"] == 0 and res["right"] and res["fds"] < 64


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("layout") / "run"
    synthetic_run(out, chunks=600, per_chunk=3, files_per_dir=250)
    return out


def test_fan_out_and_indices(small_run: Path) -> None:
    dirs = sorted(p.name for p in (small_run / "chunks").iterdir())
    assert dirs == ["00000", "00001", "00002"]
    assert [len(list((small_run / "chunks" / d).glob("chunk_*.h5"))) for d in dirs] == [250, 250, 100]
    with h5py.File(small_run / "dataset.h5", "r") as f:  # the top level maps the 3 indices, not 600 files
        srcs = {m.file_name for m in f["layer_0"].virtual_sources()}
        assert srcs == {f"chunks/{d}/index.h5" for d in dirs} and f["layer_0"].shape == (1800, 3, 96)
    with h5py.File(small_run / "chunks" / "00001" / "index.h5", "r") as f:
        assert len(f["energy"].virtual_sources()) == 250


def test_low_ulimit_never_gives_silent_fill_values(small_run: Path) -> None:
    check_no_silent_fill(small_run, files=600, limit=128)


@pytest.mark.slow
def test_two_thousand_sources_and_ulimit_512(tmp_path: Path) -> None:
    synthetic_run(tmp_path / "run", chunks=2000, per_chunk=2, files_per_dir=1000)
    check_no_silent_fill(tmp_path / "run", files=2000, limit=512)


def test_open_dataset_indexing(small_run: Path) -> None:
    with open_dataset(small_run) as ds:
        assert len(ds) == 1800 and ds.keys() == ["energy", "layer_0", "layer_1", "layer_2", "overflow"]
        col = ds["layer_1"]
        assert col.shape == (1800, 12, 12) and col[-1][0, 0] == 1800 and col[5][3, 3] == 6
        assert np.array_equal(col[10:1000:7][:, 0, 0], np.arange(11, 1001, 7))
        rows = np.array([1799, 4, 4, 900, 0])
        assert np.array_equal(col[rows][:, 0, 0], rows + 1)
        with pytest.raises(IndexError):
            col[1800]


def test_missing_source_is_named_never_nan(small_run: Path, tmp_path: Path) -> None:
    import shutil

    from gansim.data.schema import validate
    from gansim.produce.verify import deep_verify

    run = tmp_path / "run"
    shutil.copytree(small_run, run)
    (run / "chunks" / "00001" / "chunk_00000300.h5").unlink()
    for call in (lambda: validate(run / "dataset.h5"), lambda: open_dataset(run)["layer_0"][:],
                 lambda: deep_verify(run)):
        with pytest.raises(GansimError, match="chunk_00000300.h5"):
            call()


def test_auto_chunk_size_targets_gb_files() -> None:
    assert auto_chunk_size(1300.0, 10**12) == 1_000_000  # 2 GB / 1.3 KB = 1.5e6 -> 1e6 (1.3 GB files)
    assert auto_chunk_size(250.0, 10**12) == 5_000_000
    assert auto_chunk_size(251.0, 10**12) == 5_000_000  # stable under small changes of the measured size
    assert auto_chunk_size(1300.0, 5000) == 5000  # never above the run
    assert auto_chunk_size(10**9, 10**9) == 10_000  # never absurdly small


@pytest.mark.parametrize(("events", "files", "dirs"), [(10**9, 1000, 1), (10**12, 10**6, 1000)])
def test_dry_run_plan_for_huge_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str], events: int, files: int,
                                    dirs: int) -> None:
    from gansim.produce.run import make_run, produce

    gen = make_generator(tmp_path / "g.pt")
    res = produce(make_run(gen, tmp_path / "dry", events=events, dry_run=True, progress=False))
    text = capsys.readouterr().out
    assert not (tmp_path / "dry").exists()
    # ~1.3 KB/event for this untrained generator -> 1e6-event (~1.3 GB) files
    assert res["chunk_size"] == 1_000_000 and res["chunks"] == files and res["directories"] == dirs
    assert f"{files:,} chunk files of 1,000,000 events" in text and f"in {dirs:,} directories" in text
    assert f"inodes     {files + 2 * dirs + 3:,}" in text and "4,096 ranks" in text and "B/event measured" in text
    assert set(res["wall_seconds"]) >= {1, 8, 64, 512, 4096}
