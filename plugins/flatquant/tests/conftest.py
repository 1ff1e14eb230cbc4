"""Shared fixtures from the core (``tiny``), and Triton imported under its interpreter on CPU before
anything imports it compiled (see ``import_triton_interpreted``)."""

from splice.kernels.testing import import_triton_interpreted
from splice.testing.plugin_fixtures import tiny  # noqa: F401

import_triton_interpreted()
