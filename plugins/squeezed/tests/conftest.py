"""Quiet progress bars and one thread per xdist worker (from the core's shared fixtures module), and
Triton imported under its interpreter on CPU before anything imports it compiled, so the kernel
tests can run the Triton backends (see ``import_triton_interpreted``)."""

import splice.testing.plugin_fixtures  # noqa: F401
from splice.kernels.testing import import_triton_interpreted

import_triton_interpreted()
