"""The conformance suite (splice.testing) on ``flatquant``, one test per check."""

from splice.testing import check_plugin

test_flatquant_conformance = check_plugin("flatquant")
