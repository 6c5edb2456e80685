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


def per_type(row: dict) -> str:
    """NLL per token type of an evaluation row, as "pitch 1.917, time 0.513, ..."."""
    types = row.get("nll_per_token_type") or {}
    return ", ".join(f"{t} {v:.3f}" for t, v in sorted(types.items()))


def metrics_table(result: dict, config: dict) -> str:
    """The held-out NLL table of a card: the model beside the best n-gram, per token, per note
    and per pitch token, with the NLL per token type spelled out."""
    m, g = result["model"], result["ngram"]
    units = "x".join(str(u) for u in config["model"]["lstm_units"])

    def pitch(row):
        return (row.get("nll_per_token_type") or {}).get("pitch", float("nan"))

    rows = [
        "| model | NLL/token | NLL/note | NLL/pitch token | perplexity | accuracy |",
        "|---|---:|---:|---:|---:|---:|",
        f"| this model (LSTM {units}, embedding {config['model']['embedding_dim']}) | "
        f"{m['nll_per_token']:.4f} | {m['nll_per_note']:.3f} | {pitch(m):.3f} | "
        f"{m['perplexity']:.3f} | {m['accuracy']:.3f} |",
        f"| best n-gram (order {g['order']}, interpolated Kneser-Ney) | "
        f"{g['nll_per_token']:.4f} | {g['nll_per_note']:.3f} | {pitch(g):.3f} | "
        f"{g['perplexity']:.3f} | - |",
    ]
    gain = 1 - m["nll_per_token"] / g["nll_per_token"]
    return "\n".join(rows) + f"""

The LSTM's NLL per token is {gain:.1%} lower than the n-gram's. NLL per token type (nats per
token of that type), this model: {per_type(m)}; the n-gram: {per_type(g)}. The chorales have
one velocity, so velocity tokens cost almost nothing and flatter the per-token figure: per note
and per pitch token are the honest ones."""


def music_rows(music: dict, previous: dict | None, features, *,
               previous_label: str = "previous model") -> list:
    """The rows of a card's music table: per feature the reference mean, then mean (overlap
    area) of this model, of ``previous`` (another model's ``music`` summary on the same split,
    or None), of the n-gram and order-3 Markov baselines and of training pieces."""
    b = music["baselines"]
    columns = [music["features"]] + ([previous["features"]] if previous else []) + [
        b["ngram"]["features"], b["markov"]["features"], b["train"]["features"]]
    split = music["settings"]["split"]
    head = (f"| feature | {split} split | this model (OA) | "
            + (f"{previous_label} (OA) | " if previous else "")
            + f"{music['sets']['ngram']['label']} (OA) | order-3 Markov (OA) | "
            "train pieces (OA) |")
    rows = [head, "|---|---:|" + "---:|" * len(columns)]
    for name in features:
        cells = [cell(music["features"][name]["reference_mean"])]
        for col in columns:
            r = col.get(name)
            cells.append("-" if r is None else
                         f"{cell(r['mean'])} ({cell(r['overlap_area'], '.2f')})")
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    return rows


def copies_line(music: dict, ngram: str = "n-gram") -> str:
    """The card's bullet on copies from the training split: the model's n-gram copy rates and
    longest copied runs beside the ``ngram`` baseline's and the reference split's own."""
    mem, ref = music["memorization"], music["memorization"]["reference"]
    ngram_mem = music["baselines"]["ngram"]["memorization"]
    split = {"valid": "validation"}.get(music["settings"]["split"], music["settings"]["split"])
    rate16 = f"{mem['copy_rate_16']:.2%}"
    return f"""- Copies from the training split: the model's 16-note n-grams {rate16} (12:
  {mem['copy_rate_12']:.2%}, 8: {mem['copy_rate_8']:.2%}), longest copied run median
  {mem['longest_run_median']:g} / max {mem['longest_run_max']} notes; the {ngram}'s
  {ngram_mem['copy_rate_16']:.2%}; the {split} split's own {ref['copy_rate_16']:.2%} (median
  {ref['longest_run_median']:g} / max {ref['longest_run_max']}), the honest level."""


def check_against_shipped(shipped_dir: Path, tensors: dict) -> int:
    """``--check``: print the largest weight difference between a retrained model's tensors
    and the shipped model's; 0 (the exit status) when they are bit-identical, else 1."""
    import numpy as np

    from musgen.modeldir import load_model_dir

    _, shipped = load_model_dir(shipped_dir)
    worst = max(float(np.max(np.abs(shipped[k] - tensors[k]))) for k in shipped)
    print(f"largest |weight difference| against the shipped model: {worst:.3g}")
    return 0 if worst == 0.0 else 1
