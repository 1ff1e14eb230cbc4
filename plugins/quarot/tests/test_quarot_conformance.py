"""The conformance suite (splice.testing) on ``quarot``, one test per check."""

from splice.testing import check_plugin

test_quarot_conformance = check_plugin("quarot")
