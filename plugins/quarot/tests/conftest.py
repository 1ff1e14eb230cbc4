"""Shared fixtures from the core: ``tiny``, the embedded model loaded once per session."""

from splice.testing.plugin_fixtures import tiny  # noqa: F401
