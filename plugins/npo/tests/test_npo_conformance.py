"""The splice conformance suite on the ``npo`` unlearner."""

from splice.testing import check_plugin

test_npo_conformance = check_plugin("npo")
