"""Built-in Pb/LAr calorimeter shower simulator (a Geant4 stand-in) writing the CaloGAN format.

Physics (parameters and their sources: gansim/sim/calo_params.py):

* Geometry: CaloGAN's 80 x (2 mm Pb + 4 mm LAr) = 480 mm deep block, readout layers 0-90, 90-437, 437-480 mm,
  480 x 480 mm transverse; cells from gansim.data.schema (rows along y, columns along x, grid centred on the
  beam). Energy deposited outside a layer's 480 x 480 mm readout goes to that layer's overflow; energy beyond
  480 mm leaks out of the back and is lost.
* Material constants of the Pb/LAr mixture (X0, E_c, R_M, lambda_I) computed with the PDG formulas.
* e+ and gamma: GFlash (Grindhammer & Peters, hep-ex/0001020) sampling-calorimeter longitudinal profile, a
  Gamma distribution in t = depth/X0 whose (ln T, ln alpha) fluctuate event by event with the published
  correlation, and the core/tail radial profile in Molière units. Photons first convert after an exponential
  path of mean 9/7 X0.
* pi+: exponential first-interaction depth (mean lambda_I); a minimum-ionising track before it (Landau
  straggling per LAr gap); after it an electromagnetic fraction f_em ~ Beta around Groom's 1 - (E/E0)^(k-1),
  the EM part with X0-scaled and the hadronic part with lambda_I-scaled Bock profiles, the hadronic part seen
  with h/e = 1/1.4 and invisible-energy fluctuations, and a lateral spread of order lambda_I.
* Sampling: energy is deposited as spots of continuous, Gamma(k)-distributed energy; their number is Poisson
  with mean E / mu (mu = a^2 k / (k + 1), a = Amaldi's sampling term), so the spot statistics give
  sigma/E = a / sqrt(E), cell energies are continuous, and the cost grows linearly with E, like a
  real simulation. Only the LAr share is seen (sampling fraction f_samp = f_mip * e/mip ~ 0.17 for
  electrons); cells record it calibrated to the EM scale (visible / f_samp), like the CaloGAN files, whose
  cells hold the energy of active and passive material: cells + overflow ~ E_inc for a contained e+ shower.
* Readout: a per-event constant term (0.7 %), small Gaussian cell noise and 3 sigma zero suppression.

Everything is vectorised over spots with numpy; the only Python loop is over blocks of BLOCK_EVENTS events.
Block k draws from gansim.seeding.numpy_rng(seed, SIMULATE, particle code + 1000, k), so a file depends on
(seed, particle, energies) only, never on the batch size or on how the work is split.
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path

import numpy as np

from gansim.data.schema import write_calo
from gansim.errors import GansimError
from gansim.kinds.calo import CALO_LAYERS, CELL_SIZES_MM, LAYER_SHAPES
from gansim.seeding import Purpose, numpy_rng
from gansim.sim.calo_params import DEFAULT_PARAMS, CaloParams

PARTICLES: tuple[str, ...] = ("eplus", "gamma", "piplus")
PARTICLE_CODE: dict[str, int] = {"eplus": -11, "gamma": 22, "piplus": 211}  # PDG Monte Carlo numbers
BLOCK_EVENTS = 64  # RNG granularity: events per independently seeded block
E_MIN_GEV, E_MAX_GEV = 0.1, 1000.0  # validity range of the parametrisations (and memory per block)
SAMPLING_FRACTION: float = DEFAULT_PARAMS.mixture.f_em  # visible / deposited energy for electrons
# The simulator holds every event in memory (float32 cells + overflow + energy; truth adds four float64), so
# memory bounds --events. Larger samples are several files with different seeds, made in parallel.
SPLIT_HINT = "make several smaller files with different --seed values (independent events, and they run in parallel)"
# Smallest compressed size seen per event (0.1 GeV showers: ~56 B); a disk with less free space cannot hold it.
MIN_FILE_BYTES_PER_EVENT = 32

_N_CELLS = [int(np.prod(LAYER_SHAPES[k])) for k in CALO_LAYERS]  # 288, 144, 72
_OFFSETS = np.concatenate([[0], np.cumsum(_N_CELLS)])  # cell slot offsets per layer
_N_CELL_SLOTS = int(_OFFSETS[-1])  # 504
_N_SLOTS = _N_CELL_SLOTS + 3  # + one overflow slot per layer
# Per-layer lookup tables indexed by layer 0..2, and 3 for spots behind the block (dropped later).
_INV_ROW32 = np.array([1.0 / CELL_SIZES_MM[k][0] for k in CALO_LAYERS] + [0.0], dtype=np.float32)
_INV_COL32 = np.array([1.0 / CELL_SIZES_MM[k][1] for k in CALO_LAYERS] + [0.0], dtype=np.float32)
_N_COLS32 = np.array([LAYER_SHAPES[k][1] for k in CALO_LAYERS] + [0], dtype=np.int32)
_OFFSETS32 = np.array(list(_OFFSETS[:3]) + [0], dtype=np.int32)
_MOYAL_MEAN = np.euler_gamma + math.log(2.0)  # mean of the Moyal (approximate Landau) distribution


def _canon_particle(particle: str) -> str:
    p = str(particle).strip().lower()
    if p not in PARTICLES:
        raise GansimError(f"unknown particle {particle!r}; choose one of {', '.join(PARTICLES)}")
    return p


def check_energy_range(lo: float, hi: float) -> tuple[float, float]:
    """Validate an incident-energy range in GeV (GansimError naming the problem)."""
    try:
        lo, hi = float(lo), float(hi)
    except (TypeError, ValueError):
        raise GansimError(f"energy range must be two numbers in GeV, got {lo!r}, {hi!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise GansimError(f"energy range must be finite, got {lo}, {hi}")
    if lo <= 0 or hi <= 0:
        raise GansimError(f"energies must be positive (GeV), got {lo:g},{hi:g}")
    if lo > hi:
        raise GansimError(f"energy range MIN > MAX: {lo:g} > {hi:g}")
    if lo < E_MIN_GEV or hi > E_MAX_GEV:
        raise GansimError(f"energies must lie within [{E_MIN_GEV:g}, {E_MAX_GEV:g}] GeV (the validity range of the "
                          f"shower parametrisations), got {lo:g},{hi:g}")
    return lo, hi


# --- Spot generators -----------------------------------------------------------------------------------------
# Each returns per-spot arrays (event index within the block, depth z, x, y in mm, visible energy in MeV).
Spots = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _em_profile(rng: np.random.Generator, e_gev: np.ndarray, P: CaloParams) -> tuple[np.ndarray, np.ndarray]:
    """Per-event GFlash (T, alpha) for a sampling calorimeter, with correlated log-normal fluctuations."""
    m, em = P.mixture, P.em
    ly = np.log(np.maximum(e_gev * 1e3 / m.ec_mev, 1.5))
    t_hom = ly + em.t_hom
    a_hom = em.a_hom[0] + (em.a_hom[1] + em.a_hom[2] / m.z_eff) * ly
    t_sam = t_hom + em.t_sam[0] / m.sampling_frequency + em.t_sam[1] * (1.0 - m.e_hat)
    a_sam = a_hom + em.a_sam / m.sampling_frequency
    ln_t = np.log(np.maximum(t_sam, math.exp(0.1)))
    ln_a = np.log(np.maximum(a_sam, math.exp(0.1)))

    def sigma(c: tuple[float, float]) -> np.ndarray:
        den = c[0] + c[1] * ly
        return np.where(den > 1.0 / em.sig_max, 1.0 / np.maximum(den, 1e-9), em.sig_max)

    rho = np.clip(em.rho[0] + em.rho[1] * ly, -0.99, 0.99)
    g1, g2 = rng.standard_normal(len(e_gev)), rng.standard_normal(len(e_gev))
    c1, c2 = np.sqrt((1 + rho) / 2), np.sqrt((1 - rho) / 2)  # corr(c1 g1 + c2 g2, c1 g1 - c2 g2) = rho
    T = np.maximum(1.0, np.exp(ln_t + sigma(em.sig_ln_t) * (c1 * g1 + c2 * g2)))
    alpha = np.maximum(1.1, np.exp(ln_a + sigma(em.sig_ln_a) * (c1 * g1 - c2 * g2)))
    return T, alpha


_TAU_BINS_PER_UNIT = 20  # radial-parameter table resolution in tau = t/T
_TAU_BINS = 10 * _TAU_BINS_PER_UNIT  # tau in [0, 10); deeper spots use the last bin


def _radial_tables(ln_e: np.ndarray, P: CaloParams) -> tuple[np.ndarray, np.ndarray]:
    """GFlash radial parameters per event on a tau grid: core weight p (B*NT,) and radii (B*NT, 2) in mm.

    Tabulating (a few hundred values per event) instead of evaluating six exponentials per spot is what makes
    the spot loop cheap; the 0.05 step in tau is far finer than the variation of R_C, R_T and p.
    """
    m, em = P.mixture, P.em
    z, fs, one_m_eh = m.z_eff, m.sampling_frequency, 1.0 - m.e_hat
    tau = ((np.arange(_TAU_BINS) + 0.5) / _TAU_BINS_PER_UNIT)[None, :]
    ln_e = ln_e[:, None]
    e_tau = np.exp(-tau)
    rc = em.rc[0] + em.rc[1] * ln_e + (em.rc[2] + em.rc[3] * z) * tau
    rc = rc + em.rc_sam[0] * one_m_eh + em.rc_sam[1] / fs * e_tau
    k1, k2, k3 = em.rt[0] + em.rt[1] * z, em.rt[2], em.rt[3]
    k4 = em.rt[4] + em.rt[5] * ln_e
    rt = k1 * (np.exp(k3 * (tau - k2)) + np.exp(k4 * (tau - k2)))
    rt = rt + em.rt_sam[0] * one_m_eh + em.rt_sam[1] / fs * e_tau
    p1, p2 = em.wc[0] + em.wc[1] * z, em.wc[2] + em.wc[3] * z
    v = (p2 - tau) / (em.wc[4] + em.wc[5] * ln_e)
    p = p1 * np.exp(v - np.exp(v)) + one_m_eh * (em.wc_sam[0] + em.wc_sam[1] / fs * np.exp(-(tau - 1.0) ** 2))
    radii = np.stack([np.maximum(rc, 0.01), np.maximum(rt, 0.05)], axis=-1) * m.rm_mm
    return np.clip(p, 0.0, 1.0).astype(np.float32).reshape(-1), radii.astype(np.float32).reshape(-1, 2)


def _em_radius(rng: np.random.Generator, ev: np.ndarray, tau: np.ndarray, ln_e: np.ndarray,
               P: CaloParams) -> np.ndarray:
    """GFlash core/tail radial draw (mm) for spots of events ev at relative depth tau; ln_e = ln(E/GeV) per event.

    f(r) = p 2 r R_C^2/(r^2+R_C^2)^2 + (1-p) 2 r R_T^2/(r^2+R_T^2)^2: choose core with probability p, then invert
    the CDF r^2/(r^2+R^2) of the chosen component.
    """
    p_tab, r_tab = _radial_tables(ln_e, P)
    cell = ev * _TAU_BINS + np.minimum(tau * _TAU_BINS_PER_UNIT, _TAU_BINS - 1).astype(np.int64)
    tail = rng.random(len(tau), dtype=np.float32) >= p_tab[cell]
    radius = r_tab.reshape(-1)[2 * cell + tail]
    u = rng.random(len(tau), dtype=np.float32)
    return radius * np.sqrt(u / np.maximum(1.0 - u, 1e-7))


def _scatter(rng: np.random.Generator, r: np.ndarray, x0: np.ndarray, y0: np.ndarray) -> tuple[np.ndarray, ...]:
    """Place spots at radius r around (x0, y0) with uniform azimuth (float32: the hot path)."""
    phi = rng.random(len(r), dtype=np.float32) * np.float32(2 * np.pi)
    return x0 + r * np.cos(phi), y0 + r * np.sin(phi)


def _em_spots(rng: np.random.Generator, e_gev: np.ndarray, z0: np.ndarray, x0: np.ndarray, y0: np.ndarray,
              P: CaloParams) -> tuple[Spots, np.ndarray]:
    """An EM shower of energy e_gev starting at depth z0 for each event; returns spots and T (X0) per event."""
    q = P.spot_mean_gev
    T, alpha = _em_profile(rng, e_gev, P)
    beta = (alpha - 1.0) / T
    n = rng.poisson(e_gev / q)
    ev = np.repeat(np.arange(len(e_gev)), n)
    f32 = np.float32
    t = rng.standard_gamma(alpha.astype(f32)[ev], dtype=f32) * (1.0 / beta).astype(f32)[ev]  # X0 after the start
    r = _em_radius(rng, ev, t * (1.0 / T).astype(f32)[ev], np.log(e_gev), P)
    x, y = _scatter(rng, r, x0.astype(f32)[ev], y0.astype(f32)[ev])
    z = z0.astype(f32)[ev] + t * f32(P.mixture.x0_mm)
    return (ev, z, x, y, _spot_energies(rng, len(ev), q * 1e3 * P.mixture.f_em, P)), T


def _spot_energies(rng: np.random.Generator, n: int, mean_mev: float | np.ndarray, P: CaloParams) -> np.ndarray:
    """Visible energies of n spots: Gamma(k) around their mean (per spot or one value), float32."""
    k = P.spot_shape
    return (rng.standard_gamma(np.float32(k), n, dtype=np.float32) * np.float32(1.0 / k) * mean_mev).astype(
        np.float32)


def _mip_track(rng: np.random.Generator, length: np.ndarray, x0: np.ndarray, y0: np.ndarray,
               P: CaloParams) -> Spots:
    """Ionisation of a charged pion in every LAr gap before its first interaction (Moyal ~ Landau straggling)."""
    m, g = P.mixture, P.geometry
    gap_z = np.arange(g.n_periods) * m.period_mm + m.d_passive_mm + m.d_active_mm / 2
    hit = gap_z[None, :] < length[:, None]
    ev, gi = np.nonzero(hit)
    moyal = -np.log(rng.standard_normal(len(ev)) ** 2 + 1e-300)
    e_vis = np.maximum(m.mip_visible_per_period_mev + m.landau_xi_mev * (moyal - _MOYAL_MEAN), 0.0)
    f32 = np.float32
    return ev, gap_z.astype(f32)[gi], x0.astype(f32)[ev], y0.astype(f32)[ev], e_vis


def _hadron_spots(rng: np.random.Generator, e_gev: np.ndarray, x0: np.ndarray, y0: np.ndarray,
                  P: CaloParams) -> tuple[list[Spots], dict[str, np.ndarray]]:
    """pi+ showers: first interaction, EM fraction, Bock profiles, e/h, invisible energy, MIP track."""
    m, h, g = P.mixture, P.hadron, P.geometry
    depth = g.layer_edges_mm[-1]
    lam = m.lambda_i_mm
    b = len(e_gev)
    z_int = rng.exponential(lam, b)
    interacts = z_int < depth
    loss_gev = m.mip_total_per_period_mev / m.period_mm * np.minimum(z_int, depth) * 1e-3
    e_at = np.maximum(e_gev - loss_gev, 0.05)
    f_mean = np.clip(1.0 - (e_at / h.e0_gev) ** (h.k - 1.0), 0.02, 0.95)
    f_em = rng.beta(h.f_em_concentration * f_mean, h.f_em_concentration * (1.0 - f_mean))
    e_em = np.where(interacts, f_em * e_at, 0.0)
    e_h = np.where(interacts, (1.0 - f_em) * e_at, 0.0)
    ln_e = np.log(e_at)
    a = np.maximum((h.bock_a[0] + h.bock_a[1] * ln_e) * np.exp(h.shape_fluct * rng.standard_normal(b)), 0.2)
    d = h.bock_d[0] + h.bock_d[1] * ln_e
    q = P.spot_mean_gev
    # invisible-energy fluctuation of the hadronic part: Gamma with mean 1, sigma = c / sqrt(E_h)
    k_inv = np.maximum(e_h, 1e-3) / h.invisible_term ** 2
    g_inv = rng.standard_gamma(np.maximum(k_inv, 1.0)) / np.maximum(k_inv, 1.0)

    f32 = np.float32
    a32, x32, y32, z32 = a.astype(f32), x0.astype(f32), y0.astype(f32), z_int.astype(f32)

    def had_radius(s_mm: np.ndarray) -> np.ndarray:
        u = rng.random(len(s_mm), dtype=f32)
        return f32(lam) * (f32(h.lateral_r[0]) + f32(h.lateral_r[1] / lam) * s_mm) * np.sqrt(
            u / np.maximum(1.0 - u, 1e-7))

    # electromagnetic part (pi0 -> gamma gamma): Bock's X0 term
    n_em = rng.poisson(e_em / q)
    ev = np.repeat(np.arange(b), n_em)
    t = rng.standard_gamma(a32[ev], dtype=f32) * f32(1.0 / h.bock_b)  # X0 after the interaction
    t_max = np.maximum((a - 1.0) / h.bock_b, 1.0)
    r_em = _em_radius(rng, ev, t * (1.0 / t_max).astype(f32)[ev], np.log(np.maximum(e_em, 0.1)), P)
    x, y = _scatter(rng, r_em, x32[ev], y32[ev])
    x, y = _scatter(rng, f32(h.em_offset_scale) * had_radius(t * f32(m.x0_mm)), x, y)
    em_spots = (ev, z32[ev] + t * f32(m.x0_mm), x, y, _spot_energies(rng, len(ev), q * 1e3 * m.f_em, P))
    # hadronic part: Bock's lambda_I term, visible with h/e and invisible-energy fluctuations
    qh = q * h.spot_quantum_factor
    n_h = rng.poisson(e_h / qh)
    ev = np.repeat(np.arange(b), n_h)
    s = rng.standard_gamma(a32[ev], dtype=f32) * (lam / d).astype(f32)[ev]
    x, y = _scatter(rng, had_radius(s), x32[ev], y32[ev])
    e_vis = _spot_energies(rng, len(ev), (qh * 1e3 * m.f_em / h.e_over_h * g_inv)[ev], P)
    had = (ev, z32[ev] + s, x, y, e_vis)
    track = _mip_track(rng, np.minimum(z_int, depth), x0, y0, P)
    return [track, em_spots, had], {"start_mm": z_int, "f_em": np.where(interacts, f_em, 0.0)}


def _deposit(n_events: int, spots: list[Spots], P: CaloParams) -> tuple[np.ndarray, np.ndarray]:
    """Bin spots into (n_events, 504 cells + 3 overflow) visible MeV; also return leaked visible MeV.

    A spot's weight is a scalar (all spots of the population alike) or one value per spot.
    """
    out = np.zeros(n_events * _N_SLOTS)
    leaked = np.zeros(n_events)
    hw = np.float32(P.geometry.half_width_mm)
    e0, e1, e2 = (np.float32(v) for v in P.geometry.layer_edges_mm)
    for ev, z, x, y, w in spots:
        layer = (z >= e0).astype(np.int8) + (z >= e1) + (z >= e2)  # 0, 1, 2; 3 = behind the block
        xs, ys = x + hw, y + hw
        ix = (xs * _INV_COL32[layer]).astype(np.int32)  # truncation = floor where inside (xs >= 0)
        iy = (ys * _INV_ROW32[layer]).astype(np.int32)
        inside = (xs >= 0) & (xs < 2 * hw) & (ys >= 0) & (ys < 2 * hw)
        slot = np.where(inside, _OFFSETS32[layer] + iy * _N_COLS32[layer] + ix, np.int32(_N_CELL_SLOTS) + layer)
        kept = layer < 3
        flat = ev[kept] * _N_SLOTS + slot[kept]
        scalar = np.ndim(w) == 0
        out += np.bincount(flat, weights=None if scalar else w[kept], minlength=n_events * _N_SLOTS) * (
            w if scalar else 1.0)
        lost = ~kept
        leaked += np.bincount(ev[lost], weights=None if scalar else w[lost], minlength=n_events) * (
            w if scalar else 1.0)
    return out.reshape(n_events, _N_SLOTS), leaked


def _simulate_block(rng: np.random.Generator, particle: str, e_gev: np.ndarray,
                    P: CaloParams) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    b = len(e_gev)
    g = P.geometry
    x0 = rng.normal(0.0, g.beam_spot_mm, b)
    y0 = rng.normal(0.0, g.beam_spot_mm, b)
    truth: dict[str, np.ndarray] = {}
    if particle == "piplus":
        spots, truth = _hadron_spots(rng, e_gev, x0, y0, P)
        truth["tmax_mm"] = np.full(b, np.nan)
    else:
        if particle == "gamma":
            z0 = rng.exponential(P.em.photon_conversion_x0 * P.mixture.x0_mm, b)
        else:
            z0 = np.zeros(b)
        em, T = _em_spots(rng, e_gev, z0, x0, y0, P)
        spots = [em]
        truth = {"start_mm": z0, "f_em": np.ones(b), "tmax_mm": z0 + T * P.mixture.x0_mm}
    out, leaked = _deposit(b, spots, P)
    truth["leaked_visible_mev"] = leaked
    # readout: constant term (per-event response non-uniformity), cell noise, zero suppression
    out *= np.maximum(1.0 + P.em.constant_term * rng.standard_normal(b), 0.0)[:, None]
    cells = out[:, :_N_CELL_SLOTS]
    cells += P.readout.noise_mev * rng.standard_normal(cells.shape)
    cells[cells < P.readout.noise_mev * P.readout.threshold_sigma] = 0.0
    # Record deposited energy at the EM scale (visible / f_samp), as the CaloGAN files do (they hold the
    # energy of active and passive layers): sum of cells + overflow ~ E_inc for contained e+ showers.
    out *= 1.0 / P.mixture.f_em
    return out, truth


def check_memory_for(n: int, particle: str, return_truth: bool = False) -> None:
    """GansimError when n events do not fit in this machine's memory (the arrays simulate_showers allocates)."""
    from gansim.resources import check_memory, count_text

    per_event = 4 * (_N_SLOTS + 1) + (32 if return_truth else 0)
    check_memory(n, per_event, f"simulating {count_text(n)} {particle} showers in memory", SPLIT_HINT)


def simulate_showers(particle: str, n: int, seed: int, energy_range: tuple[float, float] = (1.0, 100.0),
                     energies: np.ndarray | None = None, progress: bool = False, batch_size: int = 1024,
                     params: CaloParams | None = None, return_truth: bool = False) -> dict[str, np.ndarray]:
    """Simulate n showers of `particle` in the CaloGAN geometry; arrays in file units.

    Returns {"energy": (n, 1) GeV, "layer_0": (n, 3, 96), "layer_1": (n, 12, 12), "layer_2": (n, 12, 6),
    "overflow": (n, 3)} as float32, cells in MeV at the EM scale
    (visible LAr energy / SAMPLING_FRACTION). Incident energies are uniform in energy_range
    (GeV) unless `energies` (shape (n,), GeV) is given. Deterministic for (seed, particle, energies); batch_size
    only sets how many events go between progress updates. return_truth adds float64 "start_mm" (first
    interaction / conversion depth), "f_em", "tmax_mm" (EM shower maximum) and "leaked_visible_mev".
    """
    particle = _canon_particle(particle)
    P = params or DEFAULT_PARAMS
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise GansimError(f"number of events must be a positive integer, got {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise GansimError(f"seed must be a non-negative integer, got {seed!r}")
    if not isinstance(batch_size, int | np.integer) or batch_size < 1:
        raise GansimError(f"batch size must be a positive integer, got {batch_size!r}")
    if energies is not None:
        energies = np.asarray(energies, dtype=np.float64).reshape(-1)
        if len(energies) != n:
            raise GansimError(f"got {len(energies)} energies for {n} events")
        if not np.isfinite(energies).all() or energies.min() < E_MIN_GEV or energies.max() > E_MAX_GEV:
            raise GansimError(f"energies must be finite and within [{E_MIN_GEV:g}, {E_MAX_GEV:g}] GeV")
    else:
        lo, hi = check_energy_range(*energy_range)
    from gansim.progress import bar

    check_memory_for(n, particle, return_truth)
    out = np.empty((n, _N_SLOTS), dtype=np.float32)
    energy = np.empty(n, dtype=np.float32)
    truth_parts: dict[str, list[np.ndarray]] = {}
    n_blocks = -(-n // BLOCK_EVENTS)
    step = max(1, -(-int(batch_size) // BLOCK_EVENTS))
    pbar = bar(total=n, unit="shower", enabled=progress, desc=f"simulate {particle}")
    with contextlib.closing(pbar):
        for k in range(n_blocks):
            start, stop = k * BLOCK_EVENTS, min(n, (k + 1) * BLOCK_EVENTS)
            rng = numpy_rng(seed, Purpose.SIMULATE, PARTICLE_CODE[particle] + 1000, k)
            e = energies[start:stop] if energies is not None else rng.uniform(lo, hi, stop - start)
            e = e.astype(np.float32)  # simulate exactly the energy that the file will record
            block, truth = _simulate_block(rng, particle, e.astype(np.float64), P)
            out[start:stop] = block
            energy[start:stop] = e
            if return_truth:
                for key, val in truth.items():
                    truth_parts.setdefault(key, []).append(val)
            if (k + 1) % step == 0 or k == n_blocks - 1:
                pbar.update(stop - pbar.n)
    result: dict[str, np.ndarray] = {"energy": energy.reshape(n, 1)}
    for i, key in enumerate(CALO_LAYERS):
        result[key] = out[:, _OFFSETS[i]:_OFFSETS[i + 1]].reshape(n, *LAYER_SHAPES[key])
    result["overflow"] = np.ascontiguousarray(out[:, _N_CELL_SLOTS:])
    if return_truth:
        result.update({key: np.concatenate(v) for key, v in truth_parts.items()})
    return result


def provenance(particle: str, seed: int, energy_range: tuple[float, float], params: CaloParams | None = None) -> dict:
    """HDF5 attributes recording how a file was made."""
    from gansim import __version__

    P = params or DEFAULT_PARAMS
    return {"generator": "gansim.sim.calo", "version": __version__, "seed": int(seed), "particle": particle,
            "energy_range": np.asarray(energy_range, dtype=np.float64), "config_hash": P.hash(),
            "params_hash": P.hash(),
            "cell_units": "MeV, deposited energy at the EM scale (visible / sampling_fraction)",
            "sampling_fraction": float(P.mixture.f_em), "pdg_id": PARTICLE_CODE[particle]}


def simulate_to_file(path: str | Path, particle: str, n: int, seed: int,
                     energy_range: tuple[float, float] = (1.0, 100.0), progress: bool = True,
                     batch_size: int = 1024, params: CaloParams | None = None) -> Path:
    """Simulate n showers and write them atomically as a CaloGAN-format HDF5 file with provenance."""
    from gansim.resources import check_disk, count_text

    particle = _canon_particle(particle)
    energy_range = check_energy_range(*energy_range)
    path = Path(path)
    if isinstance(n, int | np.integer) and n > 0:  # other values: simulate_showers says what is wrong
        check_memory_for(n, particle)
        check_disk(path.parent, n, MIN_FILE_BYTES_PER_EVENT, f"writing {count_text(n)} showers to {path}")
    arrays = simulate_showers(particle, n, seed, energy_range, progress=progress, batch_size=batch_size,
                              params=params)
    layers = {k: arrays[k] for k in CALO_LAYERS}
    return write_calo(path, arrays["energy"], layers, arrays["overflow"],
                      attrs=provenance(particle, seed, energy_range, params))
