"""splice.testing: the conformance suite every plugin is checked with (cf. scikit-learn's check_estimator).

Three ways to run it, all on the same checks:

- ``splice check NAME`` prints a table and exits non-zero when a check fails (``--json`` for scripts);
- in a plugin's tests, one line gives one pytest test per check::

      from splice.testing import check_plugin

      test_npo_conformance = check_plugin("npo")

- ``tests/test_conformance_plugins.py`` runs it over every plugin under ``plugins/`` and the built-ins.

``run_checks(name)`` returns :class:`CheckResult` objects; ``checks_for(name)`` the :class:`Check`
objects (call one to run it: it raises :class:`CheckFailed` or :class:`CheckSkipped`). The checks
per kind and the tolerances are listed in docs/plugins.md; ``all_specs()`` lists them in code.
"""

from .base import (
                   Check,
                   CheckFailed,
                   CheckResult,
                   CheckSkipped,
                   CheckSpec,
                   all_specs,
                   checks_for,
                   clear_cache,
                   run_checks,
                   specs_for,
                   subjects,
)
from .fixtures import FORGET_MIN_RISE, RETAIN_TOLERANCE, RTOL_LOGITS
from .pytest_helper import check_plugin

__all__ = [
                   "FORGET_MIN_RISE",
                   "RETAIN_TOLERANCE",
                   "RTOL_LOGITS",
                   "Check",
                   "CheckFailed",
                   "CheckResult",
                   "CheckSkipped",
                   "CheckSpec",
                   "all_specs",
                   "check_plugin",
                   "checks_for",
                   "clear_cache",
                   "run_checks",
                   "specs_for",
                   "subjects",
]
