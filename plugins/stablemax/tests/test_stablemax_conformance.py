"""splice's conformance suite (splice.testing) on the stablemax plugin: one test per check."""

from splice.testing import check_plugin

test_stablemax_conformance = check_plugin("stablemax")
