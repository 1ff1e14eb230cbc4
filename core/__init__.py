"""splice: splice research methods into transformer language models.

The core is deliberately small: hook specifications (one per kind of method), a registry that
discovers plugins through the ``splice`` entry-point group, the kind contracts, the reference
decoder, data, the composition pipeline, artifacts and the training loop.
"""

from .errors import ArtifactError, ConfigError, DataError, IncompatibleError, PluginNotFound, SpliceError
from .hookspecs import hookimpl
from .method import Method, MethodConfig, Paper

__version__ = "0.1.0"

__all__ = [
    "ArtifactError", "ConfigError", "DataError", "IncompatibleError", "Method", "MethodConfig", "Paper",
    "PluginNotFound", "SpliceError", "__version__", "hookimpl",
]
