"""The codec configurations the fuzz targets run with, defined once: ``gen_tables.py`` turns them
into the C++ harnesses' vocabularies and grammar tables, and the regression tests replay the
corpus with the same list. An input's first byte picks one (``byte % len(CONFIGS)``).

The default codec is what users run; the two small ones make a fuzzer reach every token type
and grammar state within a few bytes (drums, several velocity bins, the longest TimeShift and
Duration tokens that spell long gaps and notes); the last one counts time in milliseconds
through the tempo map (several time-base segments).
"""

CONFIGS = [
    {},  # musgen.codec.default_config()
    {"max_time_shift": 4, "max_duration": 3, "pitch_range": (60, 72), "velocity_bins": 4,
     "keep_drums": True, "drum_pitch_range": (35, 40), "steps_per_beat": 4},
    {"max_time_shift": 2, "max_duration": 2, "pitch_range": (60, 61), "velocity_bins": 1,
     "steps_per_beat": 1},
    {"timing": "seconds", "step_ms": 10, "max_time_shift": 20, "max_duration": 20,
     "pitch_range": (48, 72), "velocity_bins": 8},
]


#: Codec version 2 configurations (their own list, so the inputs of the version-1 targets keep
#: their meaning): the default one with two styles, and a small one that reaches every token
#: type, meter change, part and the note and silence limits within a few bytes.
CONFIGS_V2 = [
    {"version": 2, "styles": ("chorale", "pop")},
    {"version": 2, "max_time_shift": 4, "max_duration": 3, "pitch_range": (60, 64),
     "velocity_bins": 2, "drum_pitch_range": (35, 37), "max_parts": 3, "steps_per_beat": 4,
     "tempo_bins": 4, "density_bins": (2.0,), "styles": ("x",), "max_silence_beats": 2,
     "max_note_beats": 4, "time_signatures": ("4/4", "3/4", "6/8")},
]


def codec_config_v2(index: int):
    """The CodecConfig of ``CONFIGS_V2[index % len(CONFIGS_V2)]``."""
    from musgen import codec

    return codec.default_config(**CONFIGS_V2[index % len(CONFIGS_V2)])


def codec_config(index: int):
    """The CodecConfig of ``CONFIGS[index % len(CONFIGS)]``."""
    from musgen import codec

    return codec.default_config(**CONFIGS[index % len(CONFIGS)])
