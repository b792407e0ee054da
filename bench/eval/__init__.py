"""Evaluation: run a policy on a suite's simulator and record every episode (`evaluate`)."""

from bench.eval.evaluate import EvalError, EvalRequest, EvalResult, evaluate, prepare

__all__ = ["EvalError", "EvalRequest", "EvalResult", "evaluate", "prepare"]
