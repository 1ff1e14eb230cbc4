"""The splice conformance suite on the ``muse`` evaluator."""

from splice.testing import check_plugin

test_muse_conformance = check_plugin("muse")
