"""The splice conformance suite on the ``longctx`` evaluator."""

from splice.testing import check_plugin

test_longctx_conformance = check_plugin("longctx")
