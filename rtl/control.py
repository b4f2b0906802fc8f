"""Fold-phase signals shared by the preload-then-stream controllers (weight- and row-stationary)."""

from __future__ import annotations

from amaranth import Module, Signal


def fold_phases(
    m: Module, busy, comp_done, in_pre, go, pc, tcnt, rows: int, stream_len, last_pre: Signal, t_last=None
) -> tuple[Signal, Signal, Signal]:
    """(preloading, streaming, last_stream) of a fold that preloads ``rows`` rows, then streams.

    ``last_pre`` (declared by the caller, which the weight scratchpad's release already uses) is driven
    here: high on the last preload cycle. ``t_last``, where the caller keeps it, is the registered
    ``tcnt == stream_len - 1`` (no compare on the path into the sequencer's next state).
    """
    preloading = Signal()
    m.d.comb += preloading.eq(busy & ~comp_done & in_pre & ((pc != 0) | go))
    streaming = Signal()
    m.d.comb += streaming.eq(busy & ~comp_done & ~in_pre)
    m.d.comb += last_pre.eq(preloading & (pc == rows - 1))
    last_stream = Signal()
    m.d.comb += last_stream.eq(streaming & (tcnt == stream_len - 1 if t_last is None else t_last))
    return preloading, streaming, last_stream
