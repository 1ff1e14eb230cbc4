"""Errors a user can cause. The CLI prints these as one line (traceback only with --debug)."""

from __future__ import annotations


class SpliceError(Exception):
    """Base class for every error that is the user's to fix, not a bug."""


class ConfigError(SpliceError, ValueError):
    """A method's configuration (or a recipe) is invalid; the message names the field."""


class PluginNotFound(SpliceError, LookupError):
    """A method name that no installed plugin provides."""


class IncompatibleError(SpliceError):
    """A composition that cannot work, found before any work starts."""


class ArtifactError(SpliceError):
    """An artifact that is missing, corrupted, truncated or needs a plugin that is not installed."""


class DataError(SpliceError, ValueError):
    """Input data that cannot be used (empty, too long, wrong vocabulary...)."""
