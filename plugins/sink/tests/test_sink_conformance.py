"""splice's conformance suite (splice.testing) on the sink plugin: one test per check."""

from splice.testing import check_plugin

test_sink_conformance = check_plugin("sink")
