"""splice-plugin-muse: MUSE's six-way unlearning evaluation on the fictitious-authors benchmark."""

from .evaluator import Muse, MuseConfig
from .metrics import knowmem, privleak, privleak_auc, verbmem

__all__ = ["Muse", "MuseConfig", "knowmem", "privleak", "privleak_auc", "verbmem"]
