"""Shared fixtures from the core: ``lm_factory`` builds small random models (no checkpoint needed)."""

from splice.testing.plugin_fixtures import lm_factory, small_tokenizer  # noqa: F401
