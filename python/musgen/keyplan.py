"""How ``generate(key=...)`` realises a key: through the model's Key condition, or, for a key the
model hardly saw in training, by generating in the key of that mode it knows best and
transposing the result.

Corpora are often stored in one key per mode (the JSB Chorales of the standard split are in C
major and C minor), so a model trained on them has seen the condition ``Key_Dm`` a handful of
times at most: asking it for D minor through the condition alone gives music that neither keeps
D minor nor sounds like the corpus. A musician would transpose, and so does this plan.

The rule, from the training split's Key counts the model directory records
(``training.dataset.keys``, with the transposition augmentation of ``training.hyperparameters``
spread over the keys it reaches): a key whose count is at least ``KNOWN_KEY_SHARE`` of the
most common key of its mode is asked for directly; any other is generated in that most common
key (same mode, so "A harmonic minor" becomes "C harmonic minor" for a corpus in C minor) and
every pitched note is moved by the shift from it to the asked tonic, -6..+5 semitones (the
nearest, so the register stays where the corpus has it). Drums never move. A primer keeps its
own key: it is continued as it is, never transposed (a model trained with ``--key-normalize``,
on every piece moved to C major or A minor, continues it moved there, and the piece is moved
back).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .engine.constraints import Scale, parse_key

__all__ = ["KNOWN_KEY_SHARE", "KeyPlan", "key_normalized", "key_plan", "transpose_notes"]

#: A key the model saw in at least this share of the pieces of its mode's most common key is
#: asked for through the condition; a rarer one is reached by transposition.
KNOWN_KEY_SHARE = 0.25

#: Which Key conditions (major / minor) stand for a scale mode; other modes (dorian, ...) have
#: no Key token and are never transposed.
_CONDITION_MODE = {"major": "major", "minor": "minor", "harmonic minor": "minor",
                   "melodic minor": "minor"}
DRUM_CHANNEL = 9


@dataclass(frozen=True)
class KeyPlan:
    """The key asked, the key the engine generates in, and the shift from one to the other."""

    asked: Scale | None
    frame: Scale | None   # the key the engine is conditioned on and masks to
    shift: int = 0        # semitones added to every pitched note afterwards

    @property
    def transposed(self) -> bool:
        return self.asked is not None and self.frame is not None \
            and self.frame.tonic != self.asked.tonic

    def describe(self) -> str | None:
        """'generated in C minor, transposed +2' when the plan transposes, else None."""
        if not self.transposed:
            return None
        return f"generated in {self.frame.name}, transposed {self.shift:+d}"


def key_normalized(config: dict) -> bool:
    """Was the model trained on its pieces moved to C major or A minor (``musgen train
    --key-normalize``)? Its primers are moved the same way before they are continued."""
    hp = (config.get("training") or {}).get("hyperparameters") or {}
    return bool(hp.get("key_normalize"))


def _known_counts(config: dict) -> dict:
    """{(tonic, mode): pieces} of the training split's Key conditions, spread over the keys the
    transposition augmentation (``hyperparameters.transpose``: +-t semitones, uniform) reaches."""
    training = config.get("training") or {}
    keys = (training.get("dataset") or {}).get("keys") or {}
    t = int(((training.get("hyperparameters") or {}).get("transpose")) or 0)
    t = max(0, min(t, 6))
    out: dict = {}
    for name, count in keys.items():
        try:
            k = parse_key(str(name))
        except ValueError:
            continue
        for s in range(-t, t + 1):
            if t == 6 and s == 6:  # -6 and +6 reach the same key
                continue
            key = ((k.tonic + s) % 12, k.mode)
            out[key] = out.get(key, 0.0) + float(count) / (2 * t + 1 - (t == 6))
    return out


def key_plan(config: dict, key, *, primer: bool = False) -> KeyPlan:
    """The plan for ``key`` (a key name, a Scale, or None) on a model whose ``config.json`` is
    ``config`` (see the module's notes). ``primer``: a primer is continued, so never transpose."""
    if key is None:
        return KeyPlan(None, None, 0)
    scale = parse_key(key)
    direct = KeyPlan(scale, scale, 0)
    mode = _CONDITION_MODE.get(scale.mode)
    counts = _known_counts(config)
    if primer or mode is None or not counts:
        return direct
    same_mode = {tonic: n for (tonic, m), n in counts.items() if m == mode}
    if not same_mode:
        return direct
    home = max(same_mode, key=lambda tonic: (same_mode[tonic], -tonic))
    if same_mode.get(scale.tonic, 0.0) >= KNOWN_KEY_SHARE * same_mode[home]:
        return direct
    shift = (scale.tonic - home + 6) % 12 - 6
    return KeyPlan(scale, Scale(home, scale.mode), shift)


def transpose_notes(score, semitones: int):
    """``score`` with every note off the drum channel moved by ``semitones`` (a note that would
    leave 0..127 moves by the octave that keeps it inside). The score is changed in place and
    returned."""
    if not semitones or not score.notes.size:
        return score
    notes = score.notes.copy()
    pitched = notes["channel"] != DRUM_CHANNEL
    p = notes["pitch"][pitched].astype(np.int64) + int(semitones)
    p = np.where(p > 127, p - 12, np.where(p < 0, p + 12, p))
    notes["pitch"][pitched] = p.astype(notes.dtype["pitch"])
    order = np.lexsort((notes["end"], notes["pitch"], notes["channel"], notes["track"],
                        notes["start"]))
    score.notes = notes[order]
    return score
