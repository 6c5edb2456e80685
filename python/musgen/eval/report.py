"""The report of a musical evaluation: one self-contained HTML page (pictures embedded as PNG
data), the same as Markdown beside its PNG files, and the JSON.

What a person looks at first: piano rolls of a few generated pieces next to n-gram and
reference pieces, the distribution of every feature per set, the mean histograms and the
copies from the training set; then the tables (feature means, overlap area and KL per set,
memorization, NLL) and how the evaluation was run. Pictures need matplotlib
(``pip install musgen[plot]``).
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

import numpy as np

from .._io import atomic_write_bytes
from .metrics import FEATURES

__all__ = ["write_report", "markdown_report", "html_report", "text_report", "report_figures",
           "feature_rows", "ROLL_PIECES"]

#: Pieces per set drawn as piano rolls.
ROLL_PIECES = 3
#: Sets in the order they are drawn and tabled, with their colours.
_ORDER = ("generated", "ngram", "markov", "train", "reference")
_COLORS = {"generated": "tab:blue", "ngram": "tab:orange", "markov": "tab:purple",
           "train": "tab:green", "reference": "black"}
_DPI = 80


def _label(evaluation, name: str) -> str:
    info = evaluation.result.get("sets", {}).get(name, {})
    return info.get("label", name)


def _present(evaluation) -> list:
    return [n for n in _ORDER if n in evaluation.sets]


def _row_of(result: dict, name: str) -> dict | None:
    """The per-feature results of one compared set (the generated set is the top level)."""
    if name == "generated":
        return result
    return result.get("baselines", {}).get(name)


def _fmt(value, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return "(histogram)"
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return str(int(value))
    v = float(value)
    if v == 0:
        return "0"
    if abs(v) >= 1000 or abs(v) < 1e-3:
        return f"{v:.{digits - 1}e}"
    return f"{v:.{digits}g}"


# ------------------------------------------------------------------------------ tables
def feature_rows(evaluation) -> tuple:
    """(header, rows) of the feature table: the reference mean, then mean / overlap / KL of
    every compared set (strings, shared by the Markdown and HTML pages)."""
    result = evaluation.result
    compared = [n for n in _ORDER if n != "reference" and _row_of(result, n) is not None]
    header = ["feature", f"{_label(evaluation, 'reference')} mean"]
    for name in compared:
        lab = _label(evaluation, name)
        header += [f"{lab} mean", f"{lab} overlap", f"{lab} KL"]
    rows = []
    for feature in result["features"]:
        f = FEATURES[feature]
        unit = f" ({f.unit})" if f.unit else ""
        cells = [f"{feature}{unit}", _fmt(result[feature].get("reference_mean"))]
        for name in compared:
            r = _row_of(result, name)[feature]
            mean = r.get("mean")
            if feature == "ended_early" and mean is not None:
                mean = f"{100 * mean:.0f}%"
            cells += [mean if isinstance(mean, str) else _fmt(mean),
                      _fmt(r.get("overlap_area")), _fmt(r.get("kl"))]
        rows.append(cells)
    return header, rows


def _memorization_rows(evaluation) -> tuple:
    result = evaluation.result
    mem = result.get("memorization")
    header = ["set", "copy rate 8", "copy rate 12", "copy rate 16", "longest run median",
              "longest run max"]
    if not mem:
        return header, []
    rows = []
    entries = [("generated", mem)]
    for name in ("ngram", "markov"):
        b = result.get("baselines", {}).get(name)
        if b and b.get("memorization"):
            entries.append((name, b["memorization"]))
    entries.append(("reference", mem["reference"]))
    for name, m in entries:
        lab = _label(evaluation, name) + (" (the honest level)" if name == "reference" else "")
        rows.append([lab] + [_pct(m.get(f"copy_rate_{k}")) for k in (8, 12, 16)]
                    + [_fmt(m.get("longest_run_median")), _fmt(m.get("longest_run_max"))])
        if m.get("intervals") or (name == "reference" and mem.get("intervals")):
            iv = m.get("intervals") or mem["intervals"]["reference"]
            rows.append([lab + ", intervals"] + [_pct(iv.get(f"copy_rate_{k}"))
                                                 for k in (8, 12, 16)]
                        + [_fmt(iv.get("longest_run_median")), _fmt(iv.get("longest_run_max"))])
    return header, rows


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:.2f}%"


def _nll_rows(evaluation) -> tuple:
    """NLL per token (and without velocity tokens where the training split has one velocity),
    per note, perplexity and per token type (the types with targets in the split)."""
    nll = evaluation.result.get("nll")
    header = ["model", "NLL/token", "NLL/note", "perplexity"]
    if not nll:
        return header, []
    named = [(_label(evaluation, "generated"), nll["model"])]
    if "ngram" in nll:
        named.append((f"{nll['ngram']['order']}-gram (Kneser-Ney)", nll["ngram"]))
    apart = bool((nll.get("velocity") or {}).get("single")) and all(
        "nll_per_token_without_velocity" in r for _, r in named)
    types = sorted({t for _, r in named for t in r.get("nll_per_token_type", {})})
    header = (["model", "NLL/token"] + (["NLL/token w/o velocity"] if apart else [])
              + ["NLL/note", "perplexity"] + [f"{t} (per token)" for t in types])
    rows = []
    for label, r in named:
        per_type = r.get("nll_per_token_type", {})
        rows.append([label, _fmt(r["nll_per_token"], 4)]
                    + ([_fmt(r["nll_per_token_without_velocity"], 4)] if apart else [])
                    + [_fmt(r["nll_per_note"], 4), _fmt(r["perplexity"], 4)]
                    + [_fmt(per_type.get(t), 4) for t in types])
    return header, rows


def _nll_note(evaluation) -> str:
    """Why the velocity-free column is there, or ''."""
    velocity = (evaluation.result.get("nll") or {}).get("velocity") or {}
    return velocity.get("note", "") if velocity.get("single") else ""


def _settings_text(evaluation) -> str:
    settings = evaluation.result.get("settings", {})
    lines = []
    if settings.get("command"):
        lines.append(settings["command"])
    for k, v in settings.items():
        if k != "command":
            lines.append(f"{k}: {v}")
    return "\n".join(lines)


# ------------------------------------------------------------------------------ figures
def _png(fig) -> bytes:
    """The figure as a palette PNG (256 colours are plenty for plots; a third of the bytes)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI)
    from PIL import Image  # matplotlib depends on Pillow

    image = Image.open(io.BytesIO(buf.getvalue())).convert("RGB").quantize(colors=256)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def _figure(width_in: float, height_in: float):
    from ..render.pianoroll import _matplotlib

    Figure = _matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = Figure(figsize=(width_in, height_in), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _rolls_figure(evaluation) -> bytes:
    from ..render.pianoroll import draw_piano_roll

    names = [n for n in ("generated", "ngram", "reference") if n in evaluation.sets]
    rows = min(ROLL_PIECES, min(len(evaluation.sets[n].scores) for n in names))
    fig = _figure(6.2 * len(names), 2.3 * rows + 0.3)
    axes = fig.subplots(rows, len(names), squeeze=False)
    pitches = np.concatenate([evaluation.sets[n].scores[i].notes["pitch"]
                              for n in names for i in range(rows)]
                             + [np.zeros(0, np.uint8)])
    lo, hi = (int(pitches.min()) - 1, int(pitches.max()) + 1) if pitches.size else (48, 84)
    for c, name in enumerate(names):
        pieces = evaluation.sets[name]
        for r in range(rows):
            score = pieces.scores[r]
            title = f"{_label(evaluation, name)} #{r}"
            if pieces.paths:
                title = f"{_label(evaluation, name)}: {Path(pieces.paths[r]).name}"
            draw_piano_roll(score, axes[r, c], title=title, legend=False,
                            pitch_range=(max(lo, 0), min(hi, 127)))
            if r < rows - 1:
                axes[r, c].set_xlabel("")
    return _png(fig)


def _scalar_features(evaluation) -> list:
    return [n for n in evaluation.result["features"] if FEATURES[n].size == 1
            and FEATURES[n].compare]


def _features_figure(evaluation) -> bytes:
    names = _scalar_features(evaluation)
    sets = _present(evaluation)
    cols = 4
    rows = int(np.ceil(len(names) / cols))
    fig = _figure(4.0 * cols, 2.4 * rows + 0.4)
    axes = fig.subplots(rows, cols, squeeze=False).reshape(-1)
    for ax, feature in zip(axes, names):
        values = {s: evaluation.sets[s].table[feature] for s in sets}
        values = {s: v[np.isfinite(v)] for s, v in values.items()}
        both = np.concatenate(list(values.values()) + [np.zeros(0)])
        if not both.size:
            ax.set_axis_off()
            continue
        lo, hi = float(both.min()), float(both.max())
        bins = np.linspace(lo, hi if hi > lo else lo + 1.0, 25)
        for s, v in values.items():
            if v.size:
                ax.hist(v, bins=bins, density=True, histtype="step", linewidth=1.6,
                        color=_COLORS[s], label=_label(evaluation, s))
        r = evaluation.result[feature]
        oa = r.get("overlap_area")
        f = FEATURES[feature]
        ax.set_title(f"{feature}" + (f"  (OA {oa:.2f})" if oa is not None else ""),
                     fontsize="small")
        ax.set_xlabel(f.description + (f", {f.unit}" if f.unit else ""), fontsize="x-small")
        ax.tick_params(labelsize="x-small")
        ax.set_yticks([])
    for ax in axes[len(names):]:
        ax.set_axis_off()
    handles, labels = _legend_entries(axes)
    if labels:
        fig.legend(handles, labels, loc="outside upper center", ncols=len(labels),
                   fontsize="small", frameon=False)
    return _png(fig)


def _legend_entries(axes) -> tuple:
    """(handles, labels) of the first axes that has any (a feature may have no values)."""
    for ax in axes:
        handles, labels = ax.get_legend_handles_labels()
        if labels:
            return handles, labels
    return [], []


def _histograms_figure(evaluation) -> bytes:
    names = [n for n in evaluation.result["features"] if FEATURES[n].size > 1]
    sets = _present(evaluation)
    cols = 3
    rows = int(np.ceil((len(names) + 1) / cols))  # one slot more for the legend
    fig = _figure(5.0 * cols, 2.8 * rows)
    axes = fig.subplots(rows, cols, squeeze=False).reshape(-1)
    for ax, feature in zip(axes, names):
        f = FEATURES[feature]
        x = np.arange(f.size)
        for s in sets:
            table = evaluation.sets[s].table[feature]
            table = table[np.isfinite(table).all(axis=1)]
            if len(table):
                ax.plot(x, table.mean(axis=0), marker="o", markersize=3, linewidth=1.4,
                        color=_COLORS[s], label=_label(evaluation, s))
        ax.set_xticks(x)
        ax.set_xticklabels(f.labels, fontsize="x-small", rotation=90 if f.size > 12 else 0)
        oa = evaluation.result[feature].get("overlap_area")
        ax.set_title(f"{feature}" + (f"  (OA {oa:.2f})" if oa is not None else ""),
                     fontsize="small")
        ax.set_xlabel(f.description + (f", {f.unit}" if f.unit else ""), fontsize="x-small")
        ax.tick_params(axis="y", labelsize="x-small")
        ax.set_ylabel("mean share", fontsize="x-small")
    handles, labels = _legend_entries(axes)
    for ax in axes[len(names):]:
        ax.set_axis_off()
    if labels:
        axes[len(names)].legend(handles, labels, loc="center", fontsize="small", frameon=False)
    return _png(fig)


def _memorization_figure(evaluation) -> bytes | None:
    result = evaluation.result
    if not result.get("memorization"):
        return None
    rows = [("generated", result["memorization"])]
    for name in ("ngram", "markov"):
        b = result.get("baselines", {}).get(name)
        if b and b.get("memorization"):
            rows.append((name, b["memorization"]))
    rows.append(("reference", result["memorization"]["reference"]))
    fig = _figure(10.0, 3.0)
    left, right = fig.subplots(1, 2)
    width = 0.8 / len(rows)
    for i, (name, m) in enumerate(rows):
        rates = [100 * (m.get(f"copy_rate_{k}") or 0.0) for k in (8, 12, 16)]
        left.bar(np.arange(3) + (i - (len(rows) - 1) / 2) * width, rates, width,
                 color=_COLORS[name], label=_label(evaluation, name))
        runs = evaluation.sets[name].longest_run or []
        if runs:
            right.hist(runs, bins=np.arange(0, max(runs) + 2) - 0.5, density=True,
                       histtype="step", linewidth=1.6, color=_COLORS[name],
                       label=_label(evaluation, name))
    left.set_xticks(np.arange(3))
    left.set_xticklabels(["8 notes", "12 notes", "16 notes"])
    left.set_ylabel("n-grams found in the training set (%)", fontsize="small")
    left.set_title("copy rate", fontsize="small")
    left.legend(fontsize="x-small", frameon=False)
    right.set_xlabel("longest run copied verbatim (notes)", fontsize="small")
    right.set_title("longest copied run per piece", fontsize="small")
    right.set_yticks([])
    return _png(fig)


def report_figures(evaluation) -> dict:
    """{file name: PNG bytes} of the report's pictures."""
    figures = {"rolls.png": _rolls_figure(evaluation),
               "features.png": _features_figure(evaluation),
               "histograms.png": _histograms_figure(evaluation)}
    mem = _memorization_figure(evaluation)
    if mem is not None:
        figures["memorization.png"] = mem
    return figures


_CAPTIONS = {
    "rolls.png": "Piano rolls: the first pieces of each set (time in beats, bars and beats "
                 "drawn).",
    "features.png": "Per-piece distribution of every scalar feature, per set (OA: overlap "
                    "area of the generated set against the reference).",
    "histograms.png": "Mean histograms per set.",
    "memorization.png": "Copies from the training set: n-gram copy rates and the longest "
                        "verbatim run of each piece.",
}


# ------------------------------------------------------------------------------ pages
def _title(evaluation) -> str:
    settings = evaluation.result.get("settings", {})
    what = settings.get("model") or ", ".join(settings.get("generated") or []) or "generated"
    return f"Musical evaluation of {what}"


def _md_table(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


_INTRO = ("Overlap area (OA, 1 is best) and KL divergence (nats, 0 is best) compare, per "
          "feature, the distances from each set's pieces to the reference pieces with the "
          "distances between reference pieces (Yang & Lerch 2018). Memorization: share of "
          "each piece's n-note n-grams found verbatim in the training set, and the longest "
          "copied run; the reference set's own figures are the honest level.")


def markdown_report(evaluation, figures) -> str:
    """The Markdown page; ``figures`` are file names beside it."""
    parts = [f"# {_title(evaluation)}", "", _INTRO, ""]
    for name in figures:
        parts += [f"![{name}]({name})", "", f"*{_CAPTIONS.get(name, '')}*", ""]
    parts += ["## Features", "", _md_table(*feature_rows(evaluation)), ""]
    header, rows = _memorization_rows(evaluation)
    if rows:
        parts += ["## Memorization", "", _md_table(header, rows), ""]
    header, rows = _nll_rows(evaluation)
    if rows:
        nll = evaluation.result["nll"]
        parts += [f"## Held-out NLL ({nll['split']} split, nats)", "", _md_table(header, rows),
                  ""]
        if _nll_note(evaluation):
            parts += [f"Velocity: {_nll_note(evaluation)}.", ""]
    parts += ["## How this was run", "", "```", _settings_text(evaluation), "```", "",
              "## Features measured", ""]
    parts += [f"- `{n}`: {f.description}" + (f" ({f.unit})" if f.unit else "")
              for n, f in FEATURES.items()]
    return "\n".join(parts) + "\n"


def _text_table(header, rows) -> str:
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    line = (lambda r: "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                                for i, (c, w) in enumerate(zip(r, widths))))
    return "\n".join([line(header)] + [line(r) for r in rows])


def text_report(evaluation) -> str:
    """The tables as plain text (what the command line prints)."""
    parts = [_text_table(*feature_rows(evaluation))]
    header, rows = _memorization_rows(evaluation)
    if rows:
        parts += ["", "memorization (training set)", _text_table(header, rows)]
    else:
        parts += ["", "memorization: not measured (no training set given)"]
    header, rows = _nll_rows(evaluation)
    if rows:
        parts += ["", f"held-out NLL ({evaluation.result['nll']['split']} split, nats)",
                  _text_table(header, rows)]
        if _nll_note(evaluation):
            parts.append(f"velocity: {_nll_note(evaluation)}")
    return "\n".join(parts)


def _html_table(header, rows) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_CSS = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1500px;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:14px}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}
th:first-child,td:first-child{text-align:left}
thead{background:#f0f0f0}tbody tr:nth-child(even){background:#fafafa}
img{max-width:100%;border:1px solid #ddd;margin:0.5em 0}
pre{background:#f6f6f6;padding:1em;overflow-x:auto}
figcaption{color:#555;font-size:13px}"""


def html_report(evaluation, figures: dict) -> str:
    """The self-contained HTML page; ``figures`` ({name: PNG bytes}) are embedded."""
    out = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>"
           f"{html.escape(_title(evaluation))}</title><style>{_CSS}</style></head><body>",
           f"<h1>{html.escape(_title(evaluation))}</h1><p>{html.escape(_INTRO)}</p>"]
    for name, png in figures.items():
        data = base64.b64encode(png).decode("ascii")
        out.append(f"<figure><img alt='{html.escape(name)}' src='data:image/png;base64,{data}'>"
                   f"<figcaption>{html.escape(_CAPTIONS.get(name, ''))}</figcaption></figure>")
    out += ["<h2>Features</h2>", _html_table(*feature_rows(evaluation))]
    header, rows = _memorization_rows(evaluation)
    if rows:
        out += ["<h2>Memorization</h2>", _html_table(header, rows)]
    header, rows = _nll_rows(evaluation)
    if rows:
        out += [f"<h2>Held-out NLL ({html.escape(evaluation.result['nll']['split'])} split, "
                "nats)</h2>", _html_table(header, rows)]
        if _nll_note(evaluation):
            out.append(f"<p>Velocity: {html.escape(_nll_note(evaluation))}.</p>")
    out += ["<h2>How this was run</h2>", f"<pre>{html.escape(_settings_text(evaluation))}</pre>",
            "<h2>Features measured</h2><ul>"]
    out += [f"<li><code>{n}</code>: {html.escape(f.description)}"
            + (f" ({html.escape(f.unit)})" if f.unit else "") + "</li>"
            for n, f in FEATURES.items()]
    out.append("</ul></body></html>")
    return "\n".join(out) + "\n"


def write_report(evaluation, directory) -> dict:
    """Write ``report.html`` (self-contained), ``report.md`` with its PNG files, and
    ``metrics.json`` into ``directory`` -> {kind: path}."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    figures = report_figures(evaluation)
    written = {}
    for name, png in figures.items():
        atomic_write_bytes(directory / name, png)
        written[name] = directory / name
    atomic_write_bytes(directory / "report.md", markdown_report(evaluation, figures).encode())
    atomic_write_bytes(directory / "report.html", html_report(evaluation, figures).encode())
    atomic_write_bytes(directory / "metrics.json",
                       (json.dumps(evaluation.result, indent=2, sort_keys=True) + "\n").encode())
    written.update({"markdown": directory / "report.md", "html": directory / "report.html",
                    "json": directory / "metrics.json"})
    return written
