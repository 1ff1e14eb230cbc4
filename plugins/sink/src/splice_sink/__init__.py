"""The attention-sink metric Sink_k^eps (When Attention Sink Emerges in Language Models)."""

from .method import Sink, SinkConfig, sequences
from .metric import importance, row_normalize, sink_rates

__all__ = ["Sink", "SinkConfig", "importance", "row_normalize", "sequences", "sink_rates"]
