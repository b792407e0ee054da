"""dit4dit-bench: one harness for evaluating, training and ablating manipulation policies."""

__version__ = "0.1.0"
