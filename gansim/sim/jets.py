"""Reference jet images: Pythia8 events (W' -> WZ signal, QCD dijets) clustered with FastJet, LAGAN layout.

Physics set-up (recorded in every file's attributes):

* pp at sqrt(s) = 13 TeV, Pythia 8.317 defaults otherwise (Monash tune, MPI, ISR/FSR, hadronisation on).
* Signal: ``NewGaugeBoson:ffbar2Wprime`` with M(W') = 800 GeV, ``Wprime:coup2WZ = 1`` and the decays forced to
  W' -> W Z, W -> q q' (d, u, s, c, b), Z -> nu nu. The W' is produced 2 -> 1, so no pTHat cut applies; the
  jet-pT window below does the selecting (about 15% of events give an accepted jet).
* Background: ``HardQCD:all`` with ``PhaseSpace:pTHatMin/Max`` = 0.8 x / 1.5 x the jet-pT window edges
  (200-450 GeV for the default 250-300 GeV window).
* Jets: visible final-state particles (neutrinos and other invisibles dropped) with |eta| < 2.5, anti-kt
  R = 1.0, trimmed with kt R_sub = 0.3 subjets and f_cut = 5% of the jet pT; the leading trimmed jet is kept
  when its pT lies in the window (and its mass in the optional mass window).
* Per jet: LAGAN image (see gansim.sim.jet_images), trimmed pt/eta/phi/mass and tau_21 with exclusive-kt axes
  on the trimmed constituents, beta = 1, R0 = 1.

Work is split into chunks of accepted jets; chunk k of a process is seeded from (seed, process, k), so a file
depends only on (seed, events, process, windows, chunk size), never on the number of workers.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from gansim import __version__
from gansim.errors import GansimError
from gansim.seeding import Purpose, numpy_rng, seed_sequence
from gansim.sim import jet_images as ji

PROCESSES: tuple[str, ...] = ("wprime", "qcd")
PROCESS_CODE = {"wprime": 1, "qcd": 2}
SQRT_S_GEV = 13000.0
WPRIME_MASS_GEV = 800.0
JET_R = 1.0
ETA_MAX = 2.5
TRIM_R_SUB = 0.3
TRIM_F_CUT = 0.05
DEFAULT_PT_WINDOW: tuple[float, float] = (250.0, 300.0)
JETS_PER_CHUNK = 200
SEED_MAX = 900_000_000  # Pythia's Random:seed upper limit
MAX_TRIES_PER_JET = 500  # give up on a chunk whose acceptance is below 1/500 (impossible windows)
EXTRA_HINT = "pip install 'gansim[jets]'  (pythia8mc==8.317.2, fastjet>=3.4.2)"
PER_JET_KEYS: tuple[str, ...] = ("pt", "eta", "phi", "mass", "tau_21")
# Every jet is held in memory until the file is written, up to three times at once (the chunks' results, their
# concatenation and, with --process both, the shuffled copy): float32 image + label + per-jet keys.
BYTES_PER_JET = 3 * 4 * (ji.IMAGE_SIZE * ji.IMAGE_SIZE + 1 + len(PER_JET_KEYS))
MIN_FILE_BYTES_PER_JET = 16  # the per-jet floats alone compress to more than this


def require_jets_extra() -> tuple[ModuleType, ModuleType]:
    """Import (pythia8mc, fastjet) or raise a GansimError naming the extra to install."""
    missing, mods = [], []
    for name in ("pythia8mc", "fastjet"):
        try:
            mods.append(__import__(name))
        except ImportError:
            missing.append(name)
    if missing:
        raise GansimError(f"jet simulation needs Pythia8 and FastJet, missing: {', '.join(missing)}; "
                          f"install them with: {EXTRA_HINT}")
    return mods[0], mods[1]


def pythia_settings(process: str, pt_window: tuple[float, float] = DEFAULT_PT_WINDOW,
                    sqrt_s: float = SQRT_S_GEV, wprime_mass: float = WPRIME_MASS_GEV) -> list[str]:
    """The Pythia readString lines for one process (without the seed)."""
    common = [f"Beams:eCM = {sqrt_s:g}", "Print:quiet = on", "Next:numberCount = 0"]
    if process == "wprime":
        return common + [
            "NewGaugeBoson:ffbar2Wprime = on",
            f"34:m0 = {wprime_mass:g}",
            "Wprime:coup2WZ = 1.0",
            "34:onMode = off", "34:onIfMatch = 23 24",  # W' -> W Z only
            "24:onMode = off", "24:onIfAny = 1 2 3 4 5",  # W -> q q'
            "23:onMode = off", "23:onIfAny = 12 14 16",  # Z -> nu nu
        ]
    if process == "qcd":
        lo, hi = pt_window
        return common + ["HardQCD:all = on", f"PhaseSpace:pTHatMin = {0.8 * lo:g}",
                         f"PhaseSpace:pTHatMax = {1.5 * hi:g}"]
    raise GansimError(f"unknown jet process {process!r}; choose from {', '.join(PROCESSES)}")


def pythia_seed(seed: int, process: str, chunk: int) -> int:
    """Independent Pythia seed in [1, 900_000_000] for chunk `chunk` of `process` (0 would mean Pythia's default)."""
    return int(seed_sequence(seed, Purpose.SIMULATE, PROCESS_CODE[process], chunk).generate_state(1, np.uint64)[0]
               % SEED_MAX) + 1


@dataclass(frozen=True)
class Selection:
    """Accepted leading trimmed jets: lo < pT < hi (GeV), optional lo < mass < hi (GeV)."""

    pt_window: tuple[float, float] = DEFAULT_PT_WINDOW
    mass_window: tuple[float, float] | None = None

    def accepts(self, pt: float, mass: float) -> bool:
        if not self.pt_window[0] < pt < self.pt_window[1]:
            return False
        return self.mass_window is None or self.mass_window[0] < mass < self.mass_window[1]


class JetClusterer:
    """FastJet anti-kt R = 1.0 + trimming + LAGAN image + tau_21 for one event's particle 4-vectors."""

    def __init__(self, fastjet: ModuleType, selection: Selection) -> None:
        self.fj = fastjet
        self.selection = selection
        self.jet_def = fastjet.JetDefinition(fastjet.antikt_algorithm, JET_R)
        self.trimmer = fastjet.Filter(fastjet.JetDefinition(fastjet.kt_algorithm, TRIM_R_SUB),
                                      fastjet.SelectorPtFractionMin(TRIM_F_CUT))
        # A large R makes the exclusive-kt reclustering purely pairwise (no beam distance): the N-subjettiness axes.
        self.axes_def = fastjet.JetDefinition(fastjet.kt_algorithm, 10.0)
        _silence_banner(fastjet)

    def _pseudojets(self, p4: np.ndarray) -> list[Any]:
        px, py, pz, e = (np.asarray(p4[:, i], dtype=np.float64) for i in range(4))
        pt = np.hypot(px, py)
        eta = np.arcsinh(np.divide(pz, pt, out=np.zeros_like(pz), where=pt > 0))
        keep = (pt > 0) & (np.abs(eta) < ETA_MAX)
        return [self.fj.PseudoJet(float(a), float(b), float(c), float(d))
                for a, b, c, d in zip(px[keep], py[keep], pz[keep], e[keep], strict=True)]

    def leading_trimmed(self, p4: np.ndarray) -> tuple[Any, Any] | None:
        """(trimmed leading jet, cluster sequence kept alive) or None when no jet reaches the pT window."""
        particles = self._pseudojets(p4)
        if not particles:
            return None
        cs = self.fj.ClusterSequence(particles, self.jet_def)
        # Trimming only lowers pT, so jets below the window's lower edge can never be the accepted leading jet;
        # scan in untrimmed-pT order and stop once no remaining jet can beat the best trimmed pT.
        best = None
        for jet in self.fj.sorted_by_pt(cs.inclusive_jets(self.selection.pt_window[0])):
            if best is not None and jet.pt() <= best.pt():
                break
            trimmed = self.trimmer(jet)
            if best is None or trimmed.pt() > best.pt():
                best = trimmed
        return (best, cs) if best is not None else None

    def process(self, p4: np.ndarray) -> dict[str, Any] | None:
        """Per-jet record {image, pt, eta, phi, mass, tau_21} of the accepted leading trimmed jet, or None."""
        found = self.leading_trimmed(p4)
        if found is None:
            return None
        jet, _cs = found
        pt, mass = jet.pt(), jet.m()
        if not self.selection.accepts(pt, mass):
            return None
        cons = list(jet.constituents())
        c_pt = np.array([c.pt() for c in cons])
        c_eta = np.array([c.eta() for c in cons])
        c_phi = np.array([c.phi_std() for c in cons])
        c_rap = np.array([c.rap() for c in cons])
        subjets = self.fj.sorted_by_pt(list(jet.pieces()))
        image = ji.jet_image(c_pt, c_eta, c_phi, np.array([s.eta() for s in subjets]),
                             np.array([s.phi_std() for s in subjets]))
        return {"image": image, "pt": pt, "eta": jet.eta(), "phi": jet.phi_std(), "mass": mass,
                "tau_21": self.tau_21(cons, c_pt, c_rap, c_phi)}

    def tau_21(self, cons: list[Any], pt: np.ndarray, rap: np.ndarray, phi: np.ndarray) -> float:
        """tau2/tau1 with exclusive-kt axes, beta = 1, R0 = jet R."""
        if len(cons) < 2:
            return 0.0
        cs = self.fj.ClusterSequence(cons, self.axes_def)
        taus = []
        for n in (1, 2):
            axes = cs.exclusive_jets(n)
            taus.append(ji.nsubjettiness(pt, rap, phi, np.array([a.rap() for a in axes]),
                                         np.array([a.phi_std() for a in axes]), r0=JET_R, beta=1.0))
        return ji.tau21(taus[0], taus[1])


def _silence_banner(fastjet: ModuleType) -> None:
    """FastJet prints a banner to C stdout on its first clustering: do that one with fd 1 sent to /dev/null."""
    tiny = [fastjet.PseudoJet(1.0, 0.0, 0.0, 1.0)]
    with _c_stdout_to_devnull():
        fastjet.ClusterSequence(tiny, fastjet.JetDefinition(fastjet.antikt_algorithm, 0.4)).inclusive_jets()


@contextlib.contextmanager
def _c_stdout_to_devnull() -> Iterator[None]:
    sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:  # no fd 1 (odd embedding): let the banner through
        yield
        return
    libc = ctypes.CDLL(None)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            yield
            libc.fflush(None)  # push C-buffered banner text into /dev/null before fd 1 comes back
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def visible_final_state(event: Any) -> np.ndarray:
    """(n, 4) px, py, pz, E of a Pythia event's final-state visible particles."""
    rows = [(p.px(), p.py(), p.pz(), p.e()) for p in event if p.isFinal() and p.isVisible()]
    return np.array(rows, dtype=np.float64).reshape(-1, 4)


@dataclass(frozen=True)
class ChunkSpec:
    """One unit of work: `n_jets` accepted jets of `process` from a Pythia run seeded with `pythia_seed`."""

    process: str
    index: int
    n_jets: int
    pythia_seed: int
    selection: Selection


def _new_pythia(pythia8: ModuleType, spec: ChunkSpec) -> Any:
    pythia = pythia8.Pythia("", False)
    lines = pythia_settings(spec.process, spec.selection.pt_window) + \
        ["Random:setSeed = on", f"Random:seed = {spec.pythia_seed}"]
    for line in lines:
        if not pythia.readString(line):
            raise GansimError(f"Pythia rejected the setting {line!r}")
    with _c_stdout_to_devnull():
        ok = pythia.init()
    if not ok:
        raise GansimError(f"Pythia initialisation failed for process {spec.process}")
    return pythia


def generate_chunk(spec: ChunkSpec, progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Generate events until `spec.n_jets` jets are accepted; arrays plus 'events_tried'."""
    pythia8, fastjet = require_jets_extra()
    clusterer = JetClusterer(fastjet, spec.selection)
    pythia = _new_pythia(pythia8, spec)
    records: list[dict[str, Any]] = []
    tried = 0
    max_tries = MAX_TRIES_PER_JET * spec.n_jets + 1000
    while len(records) < spec.n_jets:
        if tried >= max_tries:
            raise GansimError(f"{spec.process}: only {len(records)} jets accepted in {tried} events; the pT window "
                              f"{spec.selection.pt_window} or mass window {spec.selection.mass_window} selects "
                              "(almost) nothing")
        tried += 1
        if not pythia.next():
            continue
        rec = clusterer.process(visible_final_state(pythia.event))
        if rec is not None:
            records.append(rec)
            if progress is not None:
                progress(1)
    label = 1.0 if spec.process == "wprime" else 0.0
    n = len(records)
    out: dict[str, Any] = {
        "image": np.stack([r["image"] for r in records]).astype(np.float32) if n else
        np.zeros((0, ji.IMAGE_SIZE, ji.IMAGE_SIZE), np.float32),
        "signal": np.full(n, label, dtype=np.float32),
    }
    for key in PER_JET_KEYS:
        out[key] = np.array([r[key] for r in records], dtype=np.float32)
    out["events_tried"] = tried
    return out


def plan_chunks(process: str, n_jets: int, seed: int, selection: Selection,
                chunk_size: int = JETS_PER_CHUNK) -> list[ChunkSpec]:
    """Split n_jets of one process into seeded chunks of at most chunk_size."""
    sizes = [chunk_size] * (n_jets // chunk_size) + ([n_jets % chunk_size] if n_jets % chunk_size else [])
    return [ChunkSpec(process, k, size, pythia_seed(seed, process, k), selection) for k, size in enumerate(sizes)]


def split_counts(process: str, n_events: int) -> dict[str, int]:
    """Jets per process: all of one, or for 'both' half each (the odd one goes to the signal)."""
    if process == "both":
        return {"wprime": n_events - n_events // 2, "qcd": n_events // 2}
    if process not in PROCESSES:
        raise GansimError(f"unknown --process {process!r}; choose from wprime, qcd, both")
    return {process: n_events}


_QUEUE: Any = None


def _worker_init(queue: Any) -> None:
    global _QUEUE
    _QUEUE = queue
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def _worker_chunk(spec: ChunkSpec) -> dict[str, Any]:
    return generate_chunk(spec, progress=_QUEUE.put if _QUEUE is not None else None)


def run_chunks(specs: list[ChunkSpec], workers: int, progress: Callable[[int], None]) -> list[dict[str, Any]]:
    """Run chunks on `workers` processes (1 = in this process); results in the order of `specs`."""
    if workers <= 1 or len(specs) <= 1:
        return [generate_chunk(s, progress) for s in specs]
    import multiprocessing as mp
    import queue as queue_mod

    ctx = mp.get_context("spawn")  # a clean interpreter per worker: no inherited threads or open HDF5 handles
    q = ctx.Queue()
    results: list[dict[str, Any] | None] = [None] * len(specs)
    with ProcessPoolExecutor(max_workers=min(workers, len(specs)), mp_context=ctx,
                             initializer=_worker_init, initargs=(q,)) as pool:
        futures = {pool.submit(_worker_chunk, s): i for i, s in enumerate(specs)}
        pending = set(futures)
        try:
            while pending:
                done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                with contextlib.suppress(queue_mod.Empty):
                    while True:
                        progress(q.get_nowait())
                for f in done:
                    results[futures[f]] = f.result()
        except BaseException:
            for f in pending:
                f.cancel()
            raise
    return [r for r in results if r is not None]


@dataclass
class JetSimResult:
    """What simulate_jets wrote: path, jets per process, events tried per process, wall seconds."""

    path: Path
    n_jets: dict[str, int]
    events_tried: dict[str, int]
    seconds: float

    @property
    def jets_per_s(self) -> float:
        return sum(self.n_jets.values()) / max(self.seconds, 1e-9)


def simulate_jets(out: str | Path, process: str, n_events: int, seed: int = 0, workers: int = 1,
                  pt_window: tuple[float, float] = DEFAULT_PT_WINDOW, mass_window: tuple[float, float] | None = None,
                  chunk_size: int = JETS_PER_CHUNK, progress: bool = True) -> JetSimResult:
    """Generate `n_events` accepted jets (of `process`: wprime, qcd or both) and write them to `out` atomically."""
    import time

    from gansim.progress import bar

    if n_events <= 0:
        raise GansimError(f"--events must be positive, got {n_events}")
    if not 0 <= seed < 2**63:
        raise GansimError(f"--seed must be a non-negative integer, got {seed}")
    if workers < 1:
        raise GansimError(f"--workers must be at least 1, got {workers}")
    if chunk_size < 1:
        raise GansimError(f"chunk size must be at least 1, got {chunk_size}")
    check_window(pt_window, "--pt-window")
    if mass_window is not None:
        check_window(mass_window, "--mass-window", allow_zero=True)
    selection = Selection(tuple(map(float, pt_window)), None if mass_window is None else  # type: ignore[arg-type]
                          tuple(map(float, mass_window)))
    counts = split_counts(process, n_events)
    _check_budget(Path(out), n_events)
    require_jets_extra()
    plans = {p: plan_chunks(p, n, seed, selection, chunk_size) for p, n in counts.items()}
    # Interleave the processes so both make progress; results are regrouped per process below.
    specs = [s for group in _interleave(list(plans.values())) for s in group]
    t0 = time.perf_counter()
    pbar = bar(total=n_events, unit="jet", desc=f"simulate jets ({process})", enabled=progress)
    try:
        results = run_chunks(specs, workers, pbar.update)
    finally:
        pbar.close()
    seconds = time.perf_counter() - t0
    by_key = {(s.process, s.index): r for s, r in zip(specs, results, strict=True)}
    parts = [by_key[(p, s.index)] for p in counts for s in plans[p]]
    arrays = {k: np.concatenate([r[k] for r in parts]) for k in ("image", "signal", *PER_JET_KEYS)}
    if len(counts) > 1:
        # Mix classes with a seeded permutation so any prefix of the file holds both.
        perm = numpy_rng(seed, Purpose.SHUFFLE, n_events).permutation(n_events)
        arrays = {k: v[perm] for k, v in arrays.items()}
    tried = {p: int(sum(by_key[(p, s.index)]["events_tried"] for s in plans[p])) for p in counts}
    attrs = provenance(process, seed, selection, chunk_size, counts, tried)
    path = write_jets(out, arrays, attrs)
    return JetSimResult(path=path, n_jets=counts, events_tried=tried, seconds=seconds)


def _check_budget(out: Path, n_events: int) -> None:
    """Memory (every jet is held until the file is written) and disk bound --events: say so before any work."""
    from gansim.resources import check_disk, check_memory, count_text

    check_memory(n_events, BYTES_PER_JET, f"simulating {count_text(n_events)} jets in memory",
                 "make several smaller files with different --seed values")
    check_disk(out.parent, n_events, MIN_FILE_BYTES_PER_JET, f"writing {count_text(n_events)} jets to {out}")


def _interleave(groups: list[list[ChunkSpec]]) -> Iterator[list[ChunkSpec]]:
    for i in range(max(len(g) for g in groups)):
        yield [g[i] for g in groups if i < len(g)]


def check_window(window: tuple[float, float], flag: str, allow_zero: bool = False) -> None:
    lo, hi = window
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo >= hi or lo < 0 or (lo == 0 and not allow_zero):
        raise GansimError(f"{flag}: need 0 {'<=' if allow_zero else '<'} LO < HI in GeV, got {lo:g},{hi:g}")


def provenance(process: str, seed: int, selection: Selection, chunk_size: int, counts: dict[str, int],
               tried: dict[str, int]) -> dict[str, Any]:
    """HDF5 attributes describing how the file was made (plain str/number types only)."""
    import fastjet

    attrs: dict[str, Any] = {
        "generator": "gansim simulate jets (Pythia8 + FastJet)",
        "version": __version__,
        "pythia_version": "8.317",
        "fastjet_version": str(getattr(fastjet, "__version__", "unknown")),
        "seed": int(seed),
        "process": process,
        "sqrt_s": SQRT_S_GEV,
        "wprime_mass": WPRIME_MASS_GEV,
        "jet_definition": f"anti-kt R={JET_R:g} on visible final-state particles with |eta|<{ETA_MAX:g}; trimmed "
                          f"with kt R_sub={TRIM_R_SUB:g}, f_cut={TRIM_F_CUT:g}; leading trimmed jet",
        "pt_window": np.array(selection.pt_window, dtype=np.float64),
        "mass_window": np.array(selection.mass_window or (), dtype=np.float64),
        "image": "25x25 over x,y in [-1.25,1.25], pixel = sum constituent pT (GeV); leading subjet at (12,12), "
                 "second subjet straight down (col 12, rows > 12), right half >= left half",
        "tau_21": "exclusive-kt axes, beta=1, R0=1, on trimmed constituents",
        "chunk_size": int(chunk_size),
    }
    for p, n in counts.items():
        attrs[f"pythia_settings_{p}"] = json.dumps(pythia_settings(p, selection.pt_window))
        attrs[f"n_{p}"] = int(n)
        attrs[f"events_tried_{p}"] = int(tried[p])
    return attrs


def write_jets(path: str | Path, arrays: dict[str, np.ndarray], attrs: dict[str, Any] | None = None) -> Path:
    """Write a LAGAN-layout jet file atomically (temporary name, then rename); float32 datasets."""
    from gansim.data.schema import SchemaError, write_atomic
    from gansim.kinds.jets import JET_IMAGE_SHAPE

    n = len(arrays["image"])
    if arrays["image"].shape[1:] != JET_IMAGE_SHAPE:
        raise SchemaError(f"cannot write 'image': shape {arrays['image'].shape}, expected (N, 25, 25)")
    for k, v in arrays.items():
        if len(v) != n:
            raise SchemaError(f"cannot write '{k}': {len(v)} entries, 'image' has {n}")
    return write_atomic(path, arrays, attrs)
