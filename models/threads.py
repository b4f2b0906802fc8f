"""Thread settings for worker processes (torch lives in ``coexplore.models``, so this does too)."""

from __future__ import annotations

import os


def one_thread() -> None:
    """One torch (and OpenMP) thread in this process: two one-thread workers beat one two-thread
    process for the small proxy networks (measured, docs/design.md)."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
