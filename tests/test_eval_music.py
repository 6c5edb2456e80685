"""The musical evaluation end to end: n-gram pieces sampled through the grammar, the JSON
contract, ``musgen metrics`` on folders and lists, ``musgen evaluate --music`` with its
baseline rows, and the report (self-contained HTML, Markdown with its PNGs, JSON)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from musgen import codec as codec_mod
from musgen.cli import main
from musgen.eval.baselines import NgramSampler, fit_ngram, ngram_pieces
from musgen.eval.music import score_files
from musgen.eval.ngram import KneserNey

from conftest import V1_MODEL, needs_matplotlib

REQUIRED = ("mean", "reference_mean", "overlap_area", "kl")
MEMORIZATION = ("copy_rate_8", "copy_rate_12", "copy_rate_16", "longest_run_median",
                "longest_run_max")


@pytest.fixture(scope="module")
def corpus(data_dir):
    return data_dir / "corpus_small"


@pytest.fixture(scope="module")
def dataset(corpus, tmp_path_factory):
    from musgen.data import Dataset, prepare

    out = tmp_path_factory.mktemp("eval") / "jsb"
    prepare([corpus], out, seed=0, quiet=True, codec_version=1)  # the v1 model's codec
    return Dataset.open(out)


def test_ngram_sampler_gives_the_models_probabilities():
    seqs = [[1, 3, 4, 3, 4, 5, 2], [1, 4, 3, 3, 5, 2]]
    lm = KneserNey(seqs, 6, 1, max_order=3)
    sampler = NgramSampler(lm, order=3)
    state = sampler.zero_state(1)
    query = [1, 3, 4, 3]
    # the probability of the last token of each query, given the history
    want = [lm.target_probs([query + [w]], order=3)[-1] for w in range(6)]
    for tok in query:
        logits, state = sampler.step([tok], state)
    np.testing.assert_allclose(np.exp(logits[0]), want, rtol=1e-6)
    assert np.exp(logits[0].astype(np.float64)).sum() == pytest.approx(1.0, abs=1e-5)


def test_ngram_pieces_follow_the_grammar_and_the_seed(dataset):
    model, order = fit_ngram(dataset, max_order=4)
    codec = dataset.codec
    a = ngram_pieces(model, order, codec, n=4, length="8 beats", seed=3)
    b = ngram_pieces(model, order, codec, n=4, length="8 beats", seed=3)
    c = ngram_pieces(model, order, codec, n=4, length="8 beats", seed=4)
    assert all(np.array_equal(x.notes, y.notes) for x, y in zip(a, b))
    assert not all(np.array_equal(x.notes, y.notes) for x, y in zip(a, c))
    grammar = codec_mod.grammar(codec)
    for score in a:
        assert score.n_notes > 0
        tokens = codec_mod.encode(score, codec)
        grammar.walk(tokens)  # a decoded piece re-encodes to grammar-valid tokens
        # as generate()'s pieces: 8 beats long, closed there (EOS is masked until then)
        assert score.notes["end"].max() == 8 * score.ticks_per_beat


def test_score_files_json_contract(corpus):
    ev = score_files([corpus / "test"], [corpus / "valid"], train=[corpus / "train"],
                     length="64 beats", intervals=True)
    r = ev.result
    assert r["format"] == "musgen.music_metrics" and r["features"]
    for name in r["features"]:
        for key in REQUIRED:
            assert key in r[name], (name, key)
    assert isinstance(r["pitch_range"]["mean"], float)
    assert len(r["pitch_class_histogram"]["mean"]) == 12
    assert r["ended_early"]["mean"] is not None  # JSB test pieces are shorter than 64 beats
    mem = r["memorization"]
    for key in MEMORIZATION:
        assert key in mem and key in mem["reference"] and key in mem["intervals"]
    assert 0 <= mem["copy_rate_8"] <= 1
    assert r["sets"]["generated"]["n_pieces"] == 5 and r["sets"]["training"]["n_pieces"] == 20
    # the training pieces themselves are copied whole
    again = score_files([corpus / "train"], [corpus / "valid"], train=[corpus / "train"])
    m = again.result["memorization"]
    assert m["copy_rate_16"] == 1.0
    assert m["longest_run_median"] > 100
    json.dumps(r, allow_nan=False)  # strict JSON: no NaN anywhere


@needs_matplotlib
def test_metrics_cli_report_and_json(corpus, tmp_path, capsys):
    out_json, report = tmp_path / "m.json", tmp_path / "report"
    rc = main(["metrics", str(corpus / "test"), "--reference", str(corpus / "valid"),
               "--train", str(corpus / "train"), "--json", str(out_json), "--report",
               str(report), "-q"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "chord_fit" in printed and "copy rate 16" in printed
    result = json.loads(out_json.read_text())
    assert set(MEMORIZATION) <= set(result["memorization"])
    assert result["settings"]["command"].startswith("musgen metrics ")
    page = (report / "report.html").read_text()
    assert page.count("src='data:image/png;base64,") == 4
    assert not re.search(r"(src|href)=['\"](http|//)", page)  # nothing loaded from outside
    md = (report / "report.md").read_text()
    pngs = re.findall(r"!\[[^]]*\]\(([^)]+)\)", md)
    assert sorted(pngs) == ["features.png", "histograms.png", "memorization.png", "rolls.png"]
    for name in pngs:
        assert (report / name).read_bytes()[:4] == b"\x89PNG"
    assert json.loads((report / "metrics.json").read_text()) == result
    assert "| chord_fit |" in md


@needs_matplotlib
def test_metrics_cli_reads_lists_and_reports_bad_input_in_one_line(corpus, tmp_path, capsys):
    listing = tmp_path / "pieces.txt"
    files = sorted((corpus / "test").glob("*.mid"))
    listing.write_text("# generated pieces\n" + "\n".join(str(f) for f in files[:3]) + "\n")
    rc = main(["metrics", str(listing), "--reference", str(corpus / "valid"), "--json", "-",
               "-q"])
    assert rc == 0
    result = json.loads(capsys.readouterr().out)
    assert result["sets"]["generated"]["n_pieces"] == 3 and result["memorization"] is None
    # without a training set: no memorization, and the report has no memorization picture
    assert main(["metrics", str(listing), "--reference", str(corpus / "valid"), "--report",
                 str(tmp_path / "r"), "-q"]) == 0
    assert sorted(p.name for p in (tmp_path / "r").glob("*.png")) == [
        "features.png", "histograms.png", "rolls.png"]
    assert "memorization: not measured" in capsys.readouterr().out
    assert main(["metrics", str(tmp_path / "nowhere"), "--reference", str(corpus), "-q"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "nowhere: no such folder or file" in err
    with pytest.raises(SystemExit, match=r"^musgen metrics: error: length: 'soon'"):
        main(["metrics", str(listing), "--reference", str(corpus), "--length", "soon", "-q"])
    (tmp_path / "empty").mkdir()
    assert main(["metrics", str(tmp_path / "empty"), "--reference", str(corpus), "-q"]) == 1
    assert "no MIDI files" in capsys.readouterr().err


def test_evaluate_music_cli_with_baselines(dataset, tmp_path, capsys):
    out = tmp_path / "music.json"
    rc = main(["evaluate", str(V1_MODEL), str(dataset.path), "--music", "--n", "4",
               "--length", "8 beats", "--seed", "2", "--json", str(out), "-q"])
    assert rc == 0
    r = json.loads(out.read_text())
    assert set(r["baselines"]) == {"ngram", "markov", "train"}
    for row in r["baselines"].values():
        for key in REQUIRED:
            assert key in row["chord_fit"]
    assert r["baselines"]["train"]["memorization"] is None
    assert set(MEMORIZATION) <= set(r["baselines"]["ngram"]["memorization"])
    assert r["sets"]["generated"]["n_pieces"] == 4 and r["sets"]["ngram"]["n_pieces"] == 4
    assert r["sets"]["markov"]["n_pieces"] == 4 and r["sets"]["markov"]["label"] == \
        "order-3 Markov"
    assert set(MEMORIZATION) <= set(r["baselines"]["markov"]["memorization"])
    assert r["nll"]["model"]["nll_per_token"] > 0 and "ngram" in r["nll"]
    assert r["settings"]["seed"] == 2 and r["settings"]["length"] == "8 beats"
    assert r["settings"]["command"].startswith("musgen evaluate ")
    assert 0.0 <= r["ended_early"]["mean"] <= 1.0
    # the same command gives the same figures (seeded generation and sampling)
    main(["evaluate", str(V1_MODEL), str(dataset.path), "--music", "--n", "4",
          "--length", "8 beats", "--seed", "2", "--json", str(tmp_path / "again.json"), "-q"])
    again = json.loads((tmp_path / "again.json").read_text())
    assert again["chord_fit"] == r["chord_fit"] and again["memorization"] == r["memorization"]
    with pytest.raises(SystemExit, match=r"^musgen evaluate: error: temperature"):
        main(["evaluate", str(V1_MODEL), str(dataset.path), "--music", "--n", "2",
              "--temperature", "-1", "-q"])
    with pytest.raises(SystemExit, match="--report needs --music"):
        main(["evaluate", str(V1_MODEL), str(dataset.path), "--report",
              str(tmp_path / "r")])


def _longest_rest(score) -> float:
    n = score.notes[np.argsort(score.notes["start"], kind="stable")]
    reach = np.maximum.accumulate(n["end"])
    return max(0, int((n["start"][1:] - reach[:-1]).max(initial=0))) / score.ticks_per_beat


def _most_sounding(score) -> int:
    starts, ends = score.notes["start"], score.notes["end"]
    return max(int(((starts <= t) & (ends > t)).sum()) for t in starts)


def test_ngram_pieces_keep_the_models_generation_defaults(dataset):
    """The baselines are held to the rules a model's generation defaults turn on (here: no
    rests, at most two voices)."""
    model, order = fit_ngram(dataset, max_order=4)
    kw = dict(n=8, length="16 beats", seed=5)
    free = ngram_pieces(model, order, dataset.codec, **kw)
    held = ngram_pieces(model, order, dataset.codec, defaults={"max_rest": 0.0,
                                                               "max_voices": 2}, **kw)
    assert max(_most_sounding(s) for s in free) > 2
    assert max(_most_sounding(s) for s in held) <= 2
    assert max(_longest_rest(s) for s in held) == 0


def test_evaluate_music_baselines_follow_the_models_defaults(dataset, tmp_path, monkeypatch):
    from musgen.eval import baselines, music
    from musgen.modeldir import load_model_dir, save_model_dir

    config, tensors = load_model_dir(V1_MODEL)
    config["generation"] = {"max_rest": 0.0, "max_voices": 4}
    model = save_model_dir(tmp_path / "m", config, tensors)
    seen = []
    original = baselines.ngram_pieces

    def spy(*args, **kwargs):
        seen.append(kwargs.get("defaults"))
        return original(*args, **kwargs)

    monkeypatch.setattr(baselines, "ngram_pieces", spy)
    music.evaluate_music(model, dataset, split="valid", n=2, length="4 beats", seed=1)
    assert seen == [{"max_rest": 0.0, "max_voices": 4}] * 2  # the n-gram and the Markov chain


def test_evaluate_music_without_baselines(dataset):
    from musgen.eval.music import evaluate_music

    ev = evaluate_music(V1_MODEL, dataset, split="valid", n=2, length="4 beats",
                        seed=1, baselines=False)
    r = ev.result
    assert r["baselines"] == {} and "ngram" not in r["nll"] and r["nll"]["split"] == "valid"
    assert set(ev.sets) == {"generated", "reference", "training"}
    assert r["sets"]["reference"]["n_pieces"] == 5
    with pytest.raises(ValueError, match="n=1"):
        evaluate_music(V1_MODEL, dataset, n=1)


@needs_matplotlib
def test_report_of_pieces_without_pitched_notes(corpus, data_dir, tmp_path):
    """Drum-only pieces have no pitched features: the report still comes, marked undefined."""
    import shutil

    from musgen.eval.report import write_report

    drums = data_dir / "midi" / "jazzsoft_test_midi_files" / "test-all-gm-percussion.mid"
    (tmp_path / "gen").mkdir()
    for i in range(2):
        shutil.copy(drums, tmp_path / "gen" / f"drums-{i}.mid")
    ev = score_files([tmp_path / "gen"], [corpus / "valid"])
    assert ev.result["chord_fit"]["mean"] is None and ev.result["chord_fit"]["n"] == 0
    assert ev.result["chord_fit"]["overlap_area"] is None
    written = write_report(ev, tmp_path / "report")
    assert "| chord_fit | " in written["markdown"].read_text()
    assert written["html"].stat().st_size > 10_000
