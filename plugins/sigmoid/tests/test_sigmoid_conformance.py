"""splice's conformance suite (splice.testing) on the sigmoid plugin: one test per check."""

from splice.testing import check_plugin

test_sigmoid_conformance = check_plugin("sigmoid")
