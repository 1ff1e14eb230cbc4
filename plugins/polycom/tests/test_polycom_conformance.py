"""splice's conformance suite (splice.testing) on the polycom plugin: one test per check."""

from splice.testing import check_plugin

test_polycom_conformance = check_plugin("polycom")
