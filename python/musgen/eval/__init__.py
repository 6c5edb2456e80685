"""Evaluation against real music.

* held-out likelihood: NLL per token and per note (``nll``), next to an interpolated
  Kneser-Ney n-gram (``ngram``) and the seed paper's regression model (``paper``);
* the music itself: per-piece features (``metrics``), set comparison after Yang & Lerch 2018
  (``compare``), copies from the training set (``memorization``), the n-gram and training
  baseline sets (``baselines``), the whole evaluation (``music``) and its report (``report``).
"""

from .music import MusicEvaluation, evaluate_music, score_files
from .nll import evaluate, format_report, ngram_baseline, write_json
from .paper import paper_baseline
from .report import write_report

__all__ = ["evaluate", "format_report", "paper_baseline", "ngram_baseline", "write_json",
           "evaluate_music", "score_files", "write_report", "MusicEvaluation"]
