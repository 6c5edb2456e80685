"""Find the SoundFont that gives the synthesizer its instruments.

Order: an explicit path (``soundfont=`` / ``--soundfont``), then ``MUSGEN_SOUNDFONT``, then the
places where operating-system packages install a General MIDI SoundFont (Debian/Ubuntu's
``fluid-soundfont-gm``, Fedora's ``fluid-soundfont-gm``, Arch's ``soundfont-fluid``, Homebrew).
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import SynthesizerUnavailableError

__all__ = ["find_soundfont", "SOUNDFONT_SEARCH_PATHS", "SOUNDFONT_HINT"]

#: General MIDI SoundFonts installed by system packages, most common first.
SOUNDFONT_SEARCH_PATHS = (
    "/usr/share/sounds/sf2/default-GM.sf2",          # Debian/Ubuntu alternatives link
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",          # Debian/Ubuntu fluid-soundfont-gm
    "/usr/share/sounds/sf3/default-GM.sf3",
    "/usr/share/sounds/sf3/MuseScore_General.sf3",
    "/usr/share/sounds/sf2/TimGM6mb.sf2",            # Debian/Ubuntu timgm6mb-soundfont
    "/usr/share/soundfonts/default.sf2",             # Fedora, Arch
    "/usr/share/soundfonts/FluidR3_GM.sf2",
    "/usr/share/soundfonts/FluidR3_GM2-2.sf2",
    "/usr/local/share/soundfonts/default.sf2",
    "/opt/homebrew/share/soundfonts/default.sf2",    # macOS Homebrew (Apple silicon)
    "/usr/local/share/fluidsynth/default.sf2",
)

#: What to tell a user who has none.
SOUNDFONT_HINT = ("install a General MIDI SoundFont (Debian/Ubuntu: apt-get install "
                  "fluid-soundfont-gm; Fedora: dnf install fluid-soundfont-gm), or pass "
                  "--soundfont FILE.sf2 / set MUSGEN_SOUNDFONT")


def _checked(path: Path, where: str) -> Path:
    if not path.is_file():
        raise SynthesizerUnavailableError(f"{where}: SoundFont {path} does not exist or is not a "
                                          "file")
    return path


def find_soundfont(soundfont: str | os.PathLike | None = None) -> Path:
    """The SoundFont to render with (``.sf2`` or ``.sf3``).

    Raises
    ------
    SynthesizerUnavailableError
        The given or configured file does not exist, or no system SoundFont was found (the
        message says what to install).
    """
    if soundfont is not None:
        return _checked(Path(soundfont).expanduser(), "soundfont")
    env = os.environ.get("MUSGEN_SOUNDFONT")
    if env:
        return _checked(Path(env).expanduser(), "MUSGEN_SOUNDFONT")
    for candidate in SOUNDFONT_SEARCH_PATHS:
        path = Path(candidate)
        if path.is_file():  # follows the alternatives symlink; a dangling one is skipped
            return path.resolve()
    raise SynthesizerUnavailableError(f"no SoundFont found: {SOUNDFONT_HINT}")
