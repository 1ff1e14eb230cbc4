"""The splice conformance suite on ``squeezed`` and on its ``recency`` baseline."""

from splice.testing import check_plugin

test_squeezed_conformance = check_plugin("squeezed")
test_recency_conformance = check_plugin("recency")
