"""Cycle-level simulator: per-fold operand demand served by a memory model, stalls and traffic.

``simulate_layer(layer, acc, profile)`` and ``simulate_network(net, acc, profile, trace=None)``; the
memory model follows the profile (``scalesim``: SCALE-Sim v3's buffers; ``rtl``/``ideal``: fold-level
double buffering of the generated hardware). See docs/timing.md.
"""

from coexplore.sim.cycle.result import LayerSim, NetworkSim
from coexplore.sim.cycle.simulator import scalesim_dataflow, simulate_layer, simulate_network

__all__ = ["LayerSim", "NetworkSim", "scalesim_dataflow", "simulate_layer", "simulate_network"]
