"""Kernels: the SSD scan, the causal conv1d, attention, each with a torch path and an optional CUDA path.

Backends are chosen by :mod:`zoo.kernels.dispatch` (once, overridable with ``force_backend``). This package imports
no model code.
"""

from zoo.kernels.attention import attention
from zoo.kernels.conv import causal_conv1d, causal_conv1d_step
from zoo.kernels.dispatch import force_backend, set_backend
from zoo.kernels.ssd import ssd_scan, ssd_step

__all__ = ["attention", "causal_conv1d", "causal_conv1d_step", "force_backend", "set_backend", "ssd_scan", "ssd_step"]
