"""Entry point of splice-plugin-stablemax: the StableMax output normaliser and ⊥Grad optimizers.

Importing this module (the registry does, when it loads the ``splice`` entry points) makes
``splice train --optimizer orthograd`` (⊥AdamW) and ``--optimizer orthograd_sgd`` (⊥SGD) available.
"""

from splice import hookimpl
from splice.train import register_optimizer

from .method import StableMax
from .orthograd import orthograd_adamw, orthograd_sgd

register_optimizer("orthograd", orthograd_adamw)
register_optimizer("orthograd_sgd", orthograd_sgd)


@hookimpl
def register_activations(register):
    register(StableMax)
