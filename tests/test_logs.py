"""Logs that read well in batch jobs: no Ray noise, no colour codes, no progress-bar redraws, one summary style."""

from __future__ import annotations

import io
import logging
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from gansim.compat import RayNoiseFilter, configure_ray_logging
from gansim.progress import ConsoleRelay, LineProgress, RelayProgress, install_relay, say
from tests.conftest import make_calo_arrays

# What a user must never see in a gansim log captured to a file.
NOISE = re.compile(r"\x1b\[|\r|PlacementGroupCleaner|State API|Token authentication|core_worker\.cc|raylet|"
                   r"\((RayTrainWorker|TrainController|pid=)|Traceback|repeated \d+x across cluster")


def record(msg: str, level: int = logging.WARNING) -> logging.LogRecord:
    return logging.LogRecord("ray.train", level, __file__, 1, msg, None, None)


def test_known_ray_noise_is_filtered_and_real_errors_kept() -> None:
    f = RayNoiseFilter()
    for noise in ("Token authentication is enabled for this Ray cluster. Set RAY_AUTH_MODE=disabled ...",
                  "Failed to query actor state. State API may be temporarily unavailable. Continuing to monitor.",
                  "core_worker.cc:2465: Actor with class name: 'PreemptionWatcher' and ID: 'ac6a' has constructor",
                  "Trials did not complete: [trial_driver_7ac1bb2a]"):
        assert not f.filter(record(noise)), noise
    for real in ("Worker 1 died: out of memory", "Failed to connect to GCS at 10.0.0.1:6379 within 60 s"):
        assert f.filter(record(real, logging.ERROR)), real


def test_ray_logging_is_one_plain_line(capsys) -> None:
    log = logging.getLogger("ray")
    saved = log.handlers[:], log.level, log.propagate
    log.handlers.clear()
    try:
        configure_ray_logging()
        configure_ray_logging()  # idempotent: one handler
        logging.getLogger("ray.tune").error("GCS unreachable")
        logging.getLogger("ray.tune").warning("Token authentication is enabled for this Ray cluster.")
        logging.getLogger("ray.tune").info("Started a local Ray instance.")
    finally:
        log.handlers[:], log.level, log.propagate = saved
    assert capsys.readouterr().err == "ray ERROR: GCS unreachable\n"


def test_relayed_progress_draws_status_lines_on_the_driver(monkeypatch) -> None:
    """A worker's RelayProgress messages, drawn by the driver in a batch log: plain lines, the epoch lines once."""
    monkeypatch.setenv("GANSIM_PROGRESS", "lines")
    monkeypatch.setenv("GANSIM_PROGRESS_INTERVAL", "1")

    class ListQueue(list):
        def put_nowait(self, item: object) -> None:
            self.append(item)

    q = ListQueue()
    worker = RelayProgress(q, 20, "train", "it", 4)
    worker.update(6)
    worker.set_postfix(epoch=1, d="1.2")
    worker.write("epoch 1/2  step 10  fidelity 0.5")
    worker.update(10)
    worker.close()
    relay = ConsoleRelay()
    out, err = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    for message in q:
        relay.handle(message)
    assert out.getvalue() == "epoch 1/2  step 10  fidelity 0.5\n"
    assert err.getvalue().splitlines()[-1].startswith("train: 20/20 it (100%)")
    assert not NOISE.search(out.getvalue() + err.getvalue())


def test_worker_status_lines_reach_the_driver_through_the_relay(monkeypatch) -> None:
    """say() in a Ray worker (whose stdout nobody reads) goes to the driver's relay; without one it prints, and a
    dead relay falls back to printing rather than losing the line or failing the run."""

    class ListQueue(list):
        def put_nowait(self, item: object) -> None:
            self.append(item)

    class DeadQueue:
        def put_nowait(self, item: object) -> None:
            raise RuntimeError("actor died")

    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    q = ListQueue()
    try:
        install_relay(q)
        say("gansim train: resuming from epoch 1, step 60")
        assert q == [("write", "gansim train: resuming from epoch 1, step 60")] and out.getvalue() == ""
        install_relay(DeadQueue())
        say("gansim train: already trained for 3 epochs")
    finally:
        install_relay(None)
    say("gansim train: local line")
    assert out.getvalue().splitlines() == ["gansim train: already trained for 3 epochs", "gansim train: local line"]
    relay = ConsoleRelay()
    relay.handle(q[0])  # the driver prints it as it is
    assert out.getvalue().splitlines()[-1] == "gansim train: resuming from epoch 1, step 60"


def test_line_progress_never_redraws() -> None:
    buf = io.StringIO()
    p = LineProgress(1000, "evaluate", "event", file=buf, every=0.0)
    for _ in range(5):
        p.update(200)
    p.close()
    lines = buf.getvalue().splitlines()
    assert len(lines) == 5 and lines[-1].startswith("evaluate: 1,000/1,000 event (100%)")  # close adds no repeat
    assert "\r" not in buf.getvalue() and "\x1b" not in buf.getvalue()


@pytest.mark.slow
def test_train_log_captured_to_a_file_is_clean(tmp_path: Path) -> None:
    """`gansim train` with 2 Ray workers, run outside the repository (shipped config by name) with its output in
    a file as under SLURM: gansim's lines only, each epoch once, the summary and next command last; outputs
    group-readable under umask 022."""
    from gansim.data.schema import write_calo

    arrays = make_calo_arrays(600, seed=5)
    data = write_calo(tmp_path / "showers.h5", arrays["energy"], arrays, arrays["overflow"],
                      attrs={"particle": "eplus"})
    log = tmp_path / "train.log"
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "GANSIM_PROGRESS")}
    with log.open("w") as fh:
        rc = subprocess.run([sys.executable, "-m", "gansim.cli", "train", "--config", "debug", "--workers", "2",
                             "--data", str(data), "--out", "run", "--set", "train.val_events=60"],
                            cwd=tmp_path, stdout=fh, stderr=subprocess.STDOUT, timeout=600, env=env,
                            preexec_fn=lambda: os.umask(0o022)).returncode
    text = log.read_text()
    assert rc == 0, text
    assert not NOISE.search(text), text
    lines = text.splitlines()
    assert all(ln.startswith(("gansim train: ", "epoch ", "train: ")) for ln in lines), text
    assert [ln.split()[1] for ln in lines if ln.startswith("epoch ")] == ["1/2", "2/2"], text
    assert lines[-2].startswith("gansim train: done: epoch 2") and lines[-1].startswith("gansim train: next: gansim "
                                                                                       "export "), text
    outputs = [tmp_path / "run" / "config.yaml", *(tmp_path / "run").glob("debug/checkpoint_epoch_*/state.pt")]
    assert len(outputs) == 3 and all(stat.S_IMODE(p.stat().st_mode) == 0o644 for p in outputs)


def test_shipped_configs_resolve_outside_the_repository(tmp_path: Path) -> None:
    """Configs and search spaces ship with the package: by name from any directory."""
    run = [sys.executable, "-m", "gansim.cli"]
    out = subprocess.run([*run, "config", "--config", "calogan-eplus", "--set", "tune.trials=5"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "trials: 5" in out.stdout and "name: calogan" in out.stdout, out.stderr
    listed = subprocess.run([*run, "config", "--shipped"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=120).stdout
    assert {"calogan-eplus", "debug", "tune/calogan", "tune/debug"} <= {ln.split()[0] for ln in listed.splitlines()}
    # `gansim tune` reads its default space by name too; a missing data file fails before Ray starts
    out = subprocess.run([*run, "tune", "--config", "debug", "--data", "missing.h5"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "training data not found: " in out.stderr and not (tmp_path / "runs").exists()


@pytest.mark.parametrize("argv,mode", [
    (["--progress", "bar", "train"], "bar"),
    (["evaluate", "-r", "r.h5", "-g", "g.h5", "-o", "out", "--progress", "lines"], "lines"),
    (["evaluate", "-r", "r.h5", "-g", "g.h5", "-o", "out", "--quiet"], "off"),
    (["tune", "-q"], "off"),
    (["produce", "--no-progress"], "off"),
    (["simulate", "calo", "-p", "eplus", "-n", "5", "-o", "x.h5", "--no-progress"], "off"),
    (["simulate", "calo", "-p", "eplus", "-n", "5", "-o", "x.h5", "--progress", "off"], "off"),
    (["train"], None),
])
def test_one_progress_switch(argv: list[str], mode: str | None) -> None:
    """--progress before or after the command; each command's own --quiet / --no-progress is the same switch."""
    from gansim.cli import build_parser, progress_mode

    assert progress_mode(build_parser().parse_args(argv)) == mode
