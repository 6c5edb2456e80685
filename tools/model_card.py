"""What the model recipes in this folder share: the musical evaluation a model card quotes
(``musgen evaluate --music`` with fixed settings) and the cells of its tables.

Imported by ``train_default_model.py`` and ``train_chorale_model.py`` (run as scripts from this
folder, so it is on ``sys.path``)."""

from __future__ import annotations

from pathlib import Path

#: The musical evaluation of a card: ``musgen evaluate --music`` with these settings.
MUSIC = {"n": 200, "length": "64 beats", "temperature": 1.0, "top_p": None, "seed": 0}


def music_command(split: str = "test") -> str:
    """The command line that measures a card's music on ``split``."""
    top_p = f" --top-p {MUSIC['top_p']}" if MUSIC["top_p"] else ""
    return (f"musgen evaluate MODEL DATASET --split {split} --music --n {MUSIC['n']} --length "
            f"\"{MUSIC['length']}\" --temperature {MUSIC['temperature']:g}{top_p} "
            f"--seed {MUSIC['seed']}")


def cell(value, fmt: str = ".3f") -> str:
    """A table cell: "-" for a missing value, "(hist.)" for a histogram."""
    if value is None:
        return "-"
    if isinstance(value, list):
        return "(hist.)"
    return format(value, fmt)


def measure_music(model_dir: Path, ds_dir: Path, report, *, split: str, model: str,
                  dataset: str) -> dict:
    """``music_command(split)`` run in process -> the summary for metrics.json (and the full
    report written to ``report`` when given); ``model`` and ``dataset`` describe them in it."""
    from musgen.eval.music import evaluate_music, summary
    from musgen.eval.report import write_report

    ev = evaluate_music(model_dir, ds_dir, split=split, n=MUSIC["n"], length=MUSIC["length"],
                        temperature=MUSIC["temperature"], top_p=MUSIC["top_p"],
                        seed=MUSIC["seed"], quiet=False,
                        settings={"command": music_command(split), "model": model,
                                  "dataset": dataset})
    if report:
        write_report(ev, report)
    return summary(ev.result)
