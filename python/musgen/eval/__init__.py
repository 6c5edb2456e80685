"""Evaluation against real music: held-out NLL per token and per note (``nll``), next to an
interpolated Kneser-Ney n-gram (``ngram``) and the seed paper's regression model (``paper``)."""

from .nll import evaluate, format_report, ngram_baseline, write_json
from .paper import paper_baseline

__all__ = ["evaluate", "format_report", "paper_baseline", "ngram_baseline", "write_json"]
