"""splice's conformance suite (splice.testing) on the kat plugin: one test per check."""

from splice.testing import check_plugin

test_kat_conformance = check_plugin("kat")
