"""Documented physics and geometry parameters of the built-in Pb/LAr calorimeter shower simulator.

Every number below carries its source. Material constants of the mixture are *computed* from the properties
of lead and liquid argon with the PDG formulas (Review of Particle Physics, "Passage of particles through
matter", sections on radiation length, critical energy, Molière radius and nuclear interaction length), for the
CaloGAN sampling cell of 2 mm Pb + 4 mm LAr. Lengths are in mm, energies in MeV unless a name says GeV.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field

# --- Elements -----------------------------------------------------------------------------------------------
# Z, A (g/mol), density (g/cm^3) and minimum ionisation <dE/dx>_min (MeV cm^2/g): PDG atomic and nuclear
# properties tables (pdg.lbl.gov/AtomicNuclearProperties), Pb and liquid Ar.


@dataclass(frozen=True)
class Material:
    """One absorber or active material of the sampling structure."""

    name: str
    Z: float
    A: float  # g/mol
    density: float  # g/cm^3
    dedx_min: float  # MeV cm^2 / g, minimum ionisation (PDG table)
    liquid_or_solid: bool = True  # selects the PDG critical-energy formula (solids/liquids vs gases)

    @property
    def x0_gcm2(self) -> float:
        """Radiation length, PDG eq. (Dahl's fit): X0 = 716.4 A / (Z (Z+1) ln(287/sqrt Z)) g/cm^2."""
        return 716.4 * self.A / (self.Z * (self.Z + 1.0) * math.log(287.0 / math.sqrt(self.Z)))

    @property
    def ec_mev(self) -> float:
        """Critical energy for electrons, PDG (Rossi definition fits): 610/(Z+1.24) MeV (solids, liquids),
        710/(Z+0.92) MeV (gases)."""
        return 610.0 / (self.Z + 1.24) if self.liquid_or_solid else 710.0 / (self.Z + 0.92)

    @property
    def lambda_i_gcm2(self) -> float:
        """Nuclear interaction length, PDG rule of thumb: lambda_I ~ 35 A^(1/3) g/cm^2."""
        return 35.0 * self.A ** (1.0 / 3.0)

    @property
    def rm_gcm2(self) -> float:
        """Molière radius R_M = E_s X0 / E_c (PDG), E_s = 21.2052 MeV."""
        return ES_MEV * self.x0_gcm2 / self.ec_mev


ES_MEV = 21.2052  # PDG scale energy sqrt(4 pi / alpha) m_e c^2
LEAD = Material("Pb", Z=82.0, A=207.2, density=11.35, dedx_min=1.122)
LIQUID_ARGON = Material("LAr", Z=18.0, A=39.948, density=1.396, dedx_min=1.519)


@dataclass(frozen=True)
class SamplingMixture:
    """Effective properties of a repeated (passive, active) sandwich, from mass-fraction mixing rules."""

    passive: Material
    active: Material
    d_passive_mm: float
    d_active_mm: float

    @property
    def period_mm(self) -> float:
        return self.d_passive_mm + self.d_active_mm

    @property
    def density(self) -> float:
        return (self.d_passive_mm * self.passive.density + self.d_active_mm * self.active.density) / self.period_mm

    @property
    def mass_fractions(self) -> tuple[float, float]:
        mp = self.d_passive_mm * self.passive.density
        ma = self.d_active_mm * self.active.density
        return mp / (mp + ma), ma / (mp + ma)

    @property
    def z_eff(self) -> float:
        """Z_eff = sum w_i Z_i (GFlash convention, Grindhammer & Peters hep-ex/0001020)."""
        wp, wa = self.mass_fractions
        return wp * self.passive.Z + wa * self.active.Z

    def _mix_gcm2(self, attr: str) -> float:
        # PDG: 1/X = sum_j w_j / X_j for lengths in g/cm^2 (X0, lambda_I, R_M of a mixture)
        wp, wa = self.mass_fractions
        return 1.0 / (wp / getattr(self.passive, attr) + wa / getattr(self.active, attr))

    @property
    def x0_mm(self) -> float:
        return 10.0 * self._mix_gcm2("x0_gcm2") / self.density

    @property
    def rm_mm(self) -> float:
        """PDG mixture rule 1/R_M = (1/E_s) sum w_j E_cj / X_j, i.e. 1/R_M = sum w_j / R_Mj (g/cm^2)."""
        return 10.0 * self._mix_gcm2("rm_gcm2") / self.density

    @property
    def lambda_i_mm(self) -> float:
        return 10.0 * self._mix_gcm2("lambda_i_gcm2") / self.density

    @property
    def ec_mev(self) -> float:
        """GFlash effective critical energy E_c = X0_eff sum_j w_j E_cj / X0_j (so that R_M = E_s X0 / E_c)."""
        wp, wa = self.mass_fractions
        x0 = self._mix_gcm2("x0_gcm2")
        return x0 * (wp * self.passive.ec_mev / self.passive.x0_gcm2 + wa * self.active.ec_mev / self.active.x0_gcm2)

    @property
    def sampling_frequency(self) -> float:
        """GFlash F_s = X0_eff / (d_passive + d_active): sampling layers per radiation length."""
        return self.x0_mm / self.period_mm

    @property
    def e_hat(self) -> float:
        """e/mip ratio, GFlash parametrisation ê = 1 / (1 + 0.007 (Z_passive - Z_active))."""
        return 1.0 / (1.0 + 0.007 * (self.passive.Z - self.active.Z))

    @property
    def mip_visible_per_period_mev(self) -> float:
        """Ionisation of a minimum-ionising particle in one active gap (MeV)."""
        return self.active.dedx_min * self.active.density * self.d_active_mm / 10.0

    @property
    def mip_total_per_period_mev(self) -> float:
        """Ionisation of a minimum-ionising particle in one full period, passive + active (MeV)."""
        return self.mip_visible_per_period_mev + self.passive.dedx_min * self.passive.density * self.d_passive_mm / 10

    @property
    def landau_xi_mev(self) -> float:
        """Landau width xi = (K/2) (Z/A) rho x of one active gap for beta ~ 1 (PDG, K = 0.307075 MeV cm^2/mol)."""
        return 0.5 * 0.307075 * self.active.Z / self.active.A * self.active.density * self.d_active_mm / 10.0

    @property
    def f_mip(self) -> float:
        """Sampling fraction for minimum-ionising particles (visible / total ionisation)."""
        return self.mip_visible_per_period_mev / self.mip_total_per_period_mev

    @property
    def f_em(self) -> float:
        """Electromagnetic sampling fraction = f_mip * e/mip: soft photons die in the high-Z absorber."""
        return self.f_mip * self.e_hat

    @property
    def sampling_term(self) -> float:
        """Stochastic term a of sigma/E = a/sqrt(E[GeV]): Amaldi's rule 2.7% sqrt(d_active[mm] / f_mip)
        (Amaldi, Phys. Scripta 23 (1981) 409; Wigmans, Calorimetry, ch. 4)."""
        return 0.027 * math.sqrt(self.d_active_mm / self.f_mip)


@dataclass(frozen=True)
class Geometry:
    """CaloGAN detector (Paganini, de Oliveira, Nachman, arXiv:1705.02355 / 1712.10321)."""

    n_periods: int = 80
    layer_depths_mm: tuple[float, float, float] = (90.0, 347.0, 43.0)
    half_width_mm: float = 240.0  # 480 x 480 mm readout, beam perpendicular at the centre
    beam_spot_mm: float = 1.0  # Gaussian impact-point spread (keeps the beam off exact cell edges)

    @property
    def layer_edges_mm(self) -> tuple[float, float, float]:
        d = self.layer_depths_mm
        return (d[0], d[0] + d[1], d[0] + d[1] + d[2])


@dataclass(frozen=True)
class EMParams:
    """Electromagnetic showers: GFlash sampling-calorimeter parametrisation (Grindhammer & Peters,
    hep-ex/0001020, tables for homogeneous media + sampling corrections; the same numbers ship in Geant4's
    GVFlashHomoShowerTuning / GFlashSamplingShowerTuning)."""

    # Longitudinal: profile Gamma(alpha, beta) in t = depth / X0; T = (alpha-1)/beta is the shower maximum.
    t_hom: float = -0.812  # T_hom = ln y + t_hom, y = E / E_c
    a_hom: tuple[float, float, float] = (0.81, 0.458, 2.26)  # alpha_hom = a1 + (a2 + a3/Z) ln y
    t_sam: tuple[float, float] = (-0.55, -0.69)  # T_sam = T_hom + t1 / F_s + t2 (1 - ê)
    a_sam: float = -0.476  # alpha_sam = alpha_hom + a1 / F_s
    sig_ln_t: tuple[float, float] = (-2.5, 1.25)  # sigma(ln T) = 1 / (s1 + s2 ln y)   (sampling)
    sig_ln_a: tuple[float, float] = (-0.82, 0.79)  # sigma(ln alpha) = 1 / (s1 + s2 ln y)  (sampling)
    rho: tuple[float, float] = (0.784, -0.023)  # corr(ln T, ln alpha) = r1 + r2 ln y   (sampling)
    sig_max: float = 0.5  # GFlash caps both sigmas at 0.5 (small y)
    # Lateral: f(r) = p f_C(r) + (1-p) f_T(r), f_i(r) = 2 r R_i^2 / (r^2 + R_i^2)^2, R_i in Molière radii,
    # tau = t / T. R_C = z1 + z2 tau; R_T = k1 (exp(k3 (tau-k2)) + exp(k4 (tau-k2))); p = p1 exp(v - e^v),
    # v = (p2 - tau) / p3.
    rc: tuple[float, float, float, float] = (0.0251, 0.00319, 0.1162, -0.000381)  # z1 = c1+c2 lnE, z2 = c3+c4 Z
    rt: tuple[float, float, float, float, float, float] = (0.659, -0.00309, 0.645, -2.59, 0.3585, 0.0412)
    wc: tuple[float, float, float, float, float, float] = (2.632, -0.00094, 0.401, 0.00187, 1.313, -0.0686)
    rc_sam: tuple[float, float] = (-0.0203, 0.0397)  # R_C += c1 (1-ê) + c2 / F_s exp(-tau)
    rt_sam: tuple[float, float] = (-0.14, -0.495)  # R_T += c1 (1-ê) + c2 / F_s exp(-tau)
    wc_sam: tuple[float, float] = (0.348, -0.642)  # p += (1-ê) (c1 + c2 / F_s exp(-(tau-1)^2))
    # Photons convert after an exponential path of mean 9/7 X0 (PDG; GFlash GenerateExponential).
    photon_conversion_x0: float = 9.0 / 7.0
    # Constant term of the resolution: response non-uniformity of a LAr accordion-like calorimeter, ~0.7%
    # (ATLAS LAr EM design goal, ATLAS LAr TDR CERN/LHCC/96-41). Applied per event to all cells.
    constant_term: float = 0.007


@dataclass(frozen=True)
class HadronParams:
    """Charged-pion showers: exponential first interaction, Groom's electromagnetic fraction, Bock's profile."""

    # <f_em> = 1 - (E / E0)^(k - 1) (Groom, NIM A 572 (2007) 633; PDG calorimetry review): E0 ~ 1 GeV, k ~ 0.82
    e0_gev: float = 1.0
    k: float = 0.82
    # Event-by-event f_em ~ Beta with mean <f_em> and concentration kappa: sigma(f_em) ~ 0.15 at f_em ~ 0.5,
    # the size of the pi0-fraction fluctuations measured in non-compensating calorimeters (Wigmans, ch. 4).
    f_em_concentration: float = 10.0
    # e/h of a Pb/LAr sampling calorimeter: non-compensating, e/h ~ 1.4 (H1 / ATLAS Pb-LAr test beams)
    e_over_h: float = 1.4
    # Longitudinal profile from the interaction point (Bock, Hansl-Kozanecka, Shah, NIM 186 (1981) 533):
    # dE/dx ∝ w (x/X0)^(a-1) e^(-b x/X0) + (1-w) (x/lambda)^(a-1) e^(-d x/lambda), a = a1 + a2 ln E,
    # b = const, d = d1 + d2 ln E. Here w is replaced by the fluctuating f_em of each event.
    bock_a: tuple[float, float] = (0.6165, 0.3193)
    bock_b: float = 0.2198
    bock_d: tuple[float, float] = (0.9099, -0.0237)
    shape_fluct: float = 0.15  # event-by-event log-normal spread of Bock's a (shower-to-shower variations)
    # Lateral: hadronic part drawn from 2 r R^2/(r^2+R^2)^2 with R = lambda_I (r0 + r1 s/lambda_I), s the depth
    # after the interaction; 95% of a hadron shower lies within ~1 lambda_I (PDG calorimetry review).
    lateral_r: tuple[float, float] = (0.12, 0.15)
    # pi0 sub-showers start away from the axis: their EM spread is added to half a hadronic radial draw.
    em_offset_scale: float = 0.5
    # Invisible-energy (nuclear binding) fluctuations of the hadronic part: sigma/E = c / sqrt(E_h [GeV]).
    invisible_term: float = 0.30
    # Hadronic sampling fluctuations are ~2x the EM ones (Wigmans, ch. 4): spot quantum 4x the EM quantum.
    spot_quantum_factor: float = 4.0


@dataclass(frozen=True)
class ReadoutParams:
    """Cell noise and zero suppression, in visible (LAr) MeV."""

    # Small electronic noise per cell (0.1 MeV visible ~ 0.6 MeV at the EM scale) and a 3 sigma zero-suppression
    # threshold as in LAr readouts; below threshold a cell reads 0, which gives realistic sparsity.
    noise_mev: float = 0.1
    threshold_sigma: float = 3.0


@dataclass(frozen=True)
class CaloParams:
    """The full parameter set of the simulator; its hash goes into every file's provenance."""

    mixture: SamplingMixture = field(default_factory=lambda: SamplingMixture(LEAD, LIQUID_ARGON, 2.0, 4.0))
    geometry: Geometry = field(default_factory=Geometry)
    em: EMParams = field(default_factory=EMParams)
    hadron: HadronParams = field(default_factory=HadronParams)
    readout: ReadoutParams = field(default_factory=ReadoutParams)
    # Shape k of the Gamma distribution of one spot's energy. Real deposits are continuous (many small energy
    # losses per gap); spots of one fixed energy would quantise every cell in steps of a^2 (11.4 MeV at the EM
    # scale here), a comb that no detector shows and that any classifier spots at once.
    spot_shape: float = 2.0

    @property
    def spot_quantum_gev(self) -> float:
        """Variance per GeV of the EM sampling fluctuations: sigma^2 = a^2 E gives sigma/E = a/sqrt(E)."""
        return self.mixture.sampling_term ** 2

    @property
    def spot_mean_gev(self) -> float:
        """Mean energy of one EM spot: a Poisson number of Gamma(k) spots of mean a^2 k/(k+1) has variance a^2 E."""
        return self.spot_quantum_gev * self.spot_shape / (self.spot_shape + 1.0)

    def derived(self) -> dict[str, float]:
        """The computed mixture constants (mm, MeV) for documentation and provenance."""
        m = self.mixture
        return {"X0_mm": m.x0_mm, "R_M_mm": m.rm_mm, "lambda_I_mm": m.lambda_i_mm, "E_c_MeV": m.ec_mev,
                "Z_eff": m.z_eff, "F_s": m.sampling_frequency, "e_over_mip": m.e_hat, "f_mip": m.f_mip,
                "sampling_fraction": m.f_em, "sampling_term": m.sampling_term,
                "spot_quantum_GeV": self.spot_quantum_gev, "spot_mean_GeV": self.spot_mean_gev}

    def to_dict(self) -> dict:
        return {**asdict(self), "derived": self.derived()}

    def hash(self) -> str:
        """Short sha256 of the parameter set (changes whenever any physics number changes)."""
        text = json.dumps(self.to_dict(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


DEFAULT_PARAMS = CaloParams()
