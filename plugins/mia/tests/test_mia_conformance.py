"""The splice conformance suite on the ``mia`` evaluator."""

from splice.testing import check_plugin

test_mia_conformance = check_plugin("mia")
