"""The token codec: Score <-> int32 token streams, its configuration, vocabulary and grammar.

One token stream per piece: ``BOS``, then for every note in onset order ``TimeShift*`` (only
when the onset moves), ``Pitch`` (or ``DrumPitch``), ``Velocity``, ``Duration+``, and ``EOS``.
The C++ core (``cpp/src/codec``) and the pure-Python fallback (``musgen.codec._python``) give
identical tokens, notes and error messages; ``backend=`` picks one per call.

Representation choices (why):

* Grid: ``steps_per_beat=12`` by default. 12 is the smallest grid that holds 16ths (3 steps),
  8th triplets (4) and 16th triplets (2) exactly; 24 would add 32nds at the cost of twice as many
  TimeShift/Duration tokens for the same span. Any value 1..960 may be configured.
* Rounding: a tick becomes a step by round-half-up in integer arithmetic,
  ``step = (2 * tick * steps_per_beat + tpb) // (2 * tpb)``, so both backends agree exactly.
  Tempo changes are ignored in ``timing="beats"`` (the grid is in beats). With
  ``timing="seconds"`` the grid is ``step_ms`` milliseconds and ticks are converted through the
  tempo map exactly, in integers (microseconds x ticks_per_beat), for performance recordings.
* Gaps and durations longer than ``max_time_shift`` / ``max_duration`` steps are written as
  several tokens, greedy largest first (``100 -> 48, 48, 4``): the grammar only admits that
  canonical spelling, so every (gap, duration) has exactly one token sequence.
* A note's duration is ``round(end) - round(start)`` on the grid, at least 1 step (zero-length
  and very short notes become one step long).
* Pitch range: all of 0..127 by default. The 40 extra tokens beyond the piano's 21..108 cost
  nothing measurable, and chip tunes and synth basses use them; notes outside the configured
  range are dropped.
* Velocity: ``velocity_bins`` (a power of two, 32 by default) equal bins; decoding gives the bin
  centre (bin 17 of 32 -> 70). Velocity 0 counts as 1.
* Tracks and channels are merged into one stream; decoded notes are on track 0, channel 0.
* Drums (channel 9) are dropped by default. With ``keep_drums=True`` they become ``DrumPitch``
  tokens (own block, ``drum_pitch_range`` 27..87 = General MIDI 2 percussion) followed by the
  same Velocity/Duration tokens; decoded drums are on channel 9.
* Order within one onset: pitched notes by ascending pitch, then drums by ascending pitch. Two
  notes with the same (onset step, pitch) are merged into one: the longer one is kept (on a tie,
  the louder one), as MIDI cannot sound the same key twice at once anyway.
* Tempo is not tokenized: ``decode`` writes one tempo, the ``tempo=`` argument or the config's
  ``tempo`` (microseconds per beat, 120 BPM by default). ``quantize`` keeps the piece's first
  tempo, so a round trip is ``decode(encode(s), tempo=first tempo) == quantize(s)``.
* An encoding longer than ``MAX_TOKENS`` (2**25) tokens is refused with CodecError: only a
  damaged file (a tick far beyond the music) gets there, and it must not allocate without bound.
* Decoding a prefix that stops before EOS (generation hit its length limit) works: a trailing
  note without a Duration token is dropped; a note whose last Duration token is the longest one
  keeps the duration read so far.

Where things live: ``config`` (CodecConfig: parameters, validation, serialization) on top of
``vocab`` (the token-id layout and per-token tables), ``grammar`` (the automaton that every
generated sequence obeys), ``tokens`` (encode / decode / quantize, choosing the backend),
``_python`` (the NumPy backend) and ``paper`` (the seed paper's float features).
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
