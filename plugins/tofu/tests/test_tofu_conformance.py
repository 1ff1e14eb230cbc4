"""The splice conformance suite on the ``tofu`` evaluator."""

from splice.testing import check_plugin

test_tofu_conformance = check_plugin("tofu")
