"""The token codec: Score <-> int32 token streams, its configuration, vocabulary and grammar.

Two versions (``CodecConfig.version``). Version 1 (the shipped model's; its vocabulary and
JSON are unchanged): one token stream per piece, ``BOS``, then for every note in onset order
``TimeShift*`` (only when the onset moves), ``Pitch`` (or ``DrumPitch``), ``Velocity``,
``Duration+``, and ``EOS``. Version 2 keeps that core and adds parts and instruments, tempo,
bars and meters, and header conditions (below). The C++ core (``cpp/src/codec``) and the
pure-Python fallback (``._python``, ``._python_v2``) give identical tokens, notes and error
messages; ``backend=`` picks one per call.

Representation choices, both versions (why):

* Grid: ``steps_per_beat=12`` by default. 12 is the smallest grid that holds 16ths (3 steps),
  8th triplets (4) and 16th triplets (2) exactly; 24 would add 32nds at the cost of twice as many
  TimeShift/Duration tokens for the same span. Any value 1..960 may be configured.
* Rounding: a tick becomes a step by round-half-up in integer arithmetic,
  ``step = (2 * tick * steps_per_beat + tpb) // (2 * tpb)``, so both backends agree exactly.
  Tempo changes are ignored by the grid in ``timing="beats"``. With ``timing="seconds"``
  (version 1) the grid is ``step_ms`` milliseconds and ticks are converted through the tempo
  map exactly, in integers (microseconds x ticks_per_beat), for performance recordings.
* Gaps and durations longer than ``max_time_shift`` / ``max_duration`` steps are written as
  several tokens, greedy largest first (``100 -> 48, 48, 4``): the grammar only admits that
  canonical spelling, so every (gap, duration) has exactly one token sequence.
* A note's duration is ``round(end) - round(start)`` on the grid, at least 1 step (zero-length
  and very short notes become one step long).
* Pitch range: all of 0..127 by default. The 40 extra tokens beyond the piano's 21..108 cost
  nothing measurable, and chip tunes and synth basses use them; notes outside the configured
  range are dropped.
* Velocity: ``velocity_bins`` (a power of two, 32 by default) equal bins; decoding gives the bin
  centre (bin 17 of 32 -> 70). Velocity 0 counts as 1. Version 2 keeps Velocity tokens even for
  one-velocity corpora (the contract allowed leaving them out; not measured, not done).
* Note hygiene (encode, quantize and decode alike, so ``decode(encode(s)) == quantize(s)``):
  notes are cut to ``max_note_beats`` (64); of the notes sharing an onset and key the longest,
  then the loudest, stays; a note still sounding when its key is struck again ends at the
  re-strike (version 1: the same pitch code, i.e. channel; version 2: the same part, channel 9
  or not, and pitch). A stream that needed no hygiene is a fixed point of decode/encode; any
  stream is one after a round.
* Bounded tokens: a silence (nothing sounding) longer than ``max_silence_beats`` (16) is
  shortened, in whole beats in version 1 and in whole silent bars in version 2 (at least the
  limit is kept, the leading silence too), and notes are capped as above, so a damaged file's
  far-away note costs a few tokens instead of millions. encode warns (``CodecWarning``, with
  the counts in ``.report``), ``encode_many(..., reports=[])`` returns them, and ``prepare``
  writes them to ``recovered.tsv``. ``MAX_TOKENS`` (2**25) still refuses what remains too long
  (only with the limits switched off: ``None``).
* Decoding a prefix that stops before EOS (generation hit its length limit) works: a trailing
  note without a Duration token is dropped; a note whose last Duration token is the longest one
  keeps the duration read so far.

Version 1 only: tracks and channels are merged into one stream (decoded notes on track 0,
channel 0; drums, dropped by default, on channel 9); one tempo, the ``tempo=`` argument or the
config's, so a round trip is ``decode(encode(s), tempo=first tempo) == quantize(s)``.

Version 2 (the contract's sections 1 and 2; where it was silent, decided as follows):

* Header, once after BOS: ``Program_<p>`` per part (1..``max_parts``), ``Key``, ``Style``,
  ``Density``, ``Tempo``, ``TimeSig``. An empty score is its header (with ``Program_0``) and
  EOS. Body: ``Bar`` starts every bar up to the last onset's (no trailing empty bars);
  ``TimeSig`` right after a Bar where the meter changes; ``Tempo`` where an onset begins,
  before its first note; ``Part_<i>`` before a note whose part differs from the previous
  note's (measured against a Part per note: ``bench/bench_part_tokens.py``); within an onset
  notes by (part, code).
* Parts: a part is a (track, channel, program in effect at the note's start: the last Program
  Change of that track and channel, else 0) with notes; channel 9 is the drum part
  (``Program_Drums``, DrumPitch tokens; ``keep_drums`` defaults to True in version 2). Parts
  are ordered by (track, channel, first onset, program), so a program change mid-track makes a
  new part. Beyond ``max_parts``: the last part sharing a (track, channel) with an earlier one
  is merged into it, then the last sharing a program, then the part with the fewest notes is
  dropped (CodecWarning).
* Tempo: 32 log-spaced bins spanning 40-250 BPM on a grid through 120 BPM (39.0 .. 243.9 BPM,
  6.1 % apart; every file without a tempo event comes back exact); binned by integer bounds
  (geometric means of neighbouring centres). A change takes effect at the next onset (the last
  of several wins; one that keeps the bin, or comes after the last onset, is dropped). SMPTE
  files are 120 BPM, as their beat grid.
* Meter: the config's list of meters (``time_signatures``); another meter maps to a listed one
  with the same bar length (same denominator first), else 4/4 (POP909's 1/4 becomes 4/4). A
  change takes effect at the first bar line at or after it.
* Key: the first key signature's key when plausible (its Krumhansl-Schmuckler correlation at
  least 0.9 x the best key's; a major signature also stands for its relative minor when that
  correlates better), else the best key of a duration-weighted pitch-class histogram (each
  note counting at most 32 beats) against the Krumhansl-Kessler profiles, computed on integers
  and one float division per key, so both backends agree to the bit.
* Density: notes per beat over the piece (to the last note's end, at least one beat), binned
  by ``density_bins`` (11 bins: edges 1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 12), in integers.
* Style: ``Style_unknown`` and one token per label of the config (``encode(style=...)``).
* Decode: one track per part (tracks 0..P-1), named after its General MIDI instrument (the
  tokens carry no track names; a primer's own tracks and names are kept by
  ``generation.continue_primer``), a program change at tick 0 (not for drums), drums on
  channel 9, other parts on 0..15 skipping 9 (more than 15 melodic parts: a part sharing an
  earlier part's program joins its channel first); the tempo map (bin centres), the meters
  (``clocks_per_click`` 96/denominator, 8 32nds per quarter) and one key signature at tick 0.
  What any grammar path decodes to: a ``Part_i`` beyond the declared parts goes to the last
  part; a TimeShift that crosses a bar line wraps (the clock keeps it; the next Bar goes to the
  first bar line after the clock); a DrumPitch sounds on channel 9 even in a melodic part; a
  closing ``Bar EOS`` ends the piece at that bar line, holding the notes sounding at the last
  onset to it.
* The engines' rules read ``token_tables(config)`` and mask condition blocks by
  ``config.block(name)``; ``density_token``, ``tempo_token``, ``names.parse_key``,
  ``names.parse_program`` map user values to tokens; ``read_header`` reads a stream's
  conditions back.

Where things live: ``config`` (CodecConfig: parameters, validation, serialization) on top of
``vocab`` (the token-id layouts and per-token types), ``names`` (instruments, keys, meters),
``grammar`` (the automaton that every generated sequence obeys), ``tables`` (the engines'
per-token tables), ``tokens`` (encode / decode / quantize, choosing the backend), ``_python``
and ``_python_v2`` (the NumPy backends), ``assemble`` (a version-2 piece's Score) and ``paper``
(the seed paper's float features).
"""

from .config import FORMAT, FORMAT_VERSION, MAX_TOKENS, VERSIONS, CodecConfig, default_config
from .grammar import S_END, S_START, Grammar, grammar, grammar_mask
from .paper import paper_decode, paper_features
from .tables import TokenTables, token_tables
from .tokens import decode, describe_report, encode, encode_many, quantize, read_header
from .vocab import (
    TYPE_BAR,
    TYPE_DENSITY,
    TYPE_DRUM_PITCH,
    TYPE_DURATION,
    TYPE_KEY,
    TYPE_NAMES,
    TYPE_PART,
    TYPE_PITCH,
    TYPE_PROGRAM,
    TYPE_SPECIAL,
    TYPE_STYLE,
    TYPE_TEMPO,
    TYPE_TIME,
    TYPE_TIMESIG,
    TYPE_VELOCITY,
)

__all__ = [
    "CodecConfig",
    "Grammar",
    "S_START",
    "S_END",
    "TYPE_SPECIAL",
    "TYPE_TIME",
    "TYPE_PITCH",
    "TYPE_VELOCITY",
    "TYPE_DURATION",
    "TYPE_DRUM_PITCH",
    "TYPE_PROGRAM",
    "TYPE_KEY",
    "TYPE_STYLE",
    "TYPE_DENSITY",
    "TYPE_TEMPO",
    "TYPE_TIMESIG",
    "TYPE_BAR",
    "TYPE_PART",
    "TYPE_NAMES",
    "TokenTables",
    "token_tables",
    "VERSIONS",
    "default_config",
    "grammar",
    "grammar_mask",
    "encode",
    "encode_many",
    "decode",
    "quantize",
    "read_header",
    "describe_report",
    "paper_features",
    "paper_decode",
    "MAX_TOKENS",
    "FORMAT",
    "FORMAT_VERSION",
]
