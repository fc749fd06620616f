"""Which shipped tracks the tests drive: every track for the cheap checks, a subset for the costly ones.

Loading, the README figures and SHA256SUMS are checked on every shipped track (milliseconds
each). Checks that drive laps, sample reward params over a track, compare geometry with
plain-Python references or build Gazebo worlds take seconds per track, so with 95 tracks
they run on `REPRESENTATIVE_TRACKS`: the 8 tracks shipped before the whole set (the open
`Straight_track`, the narrowest and the reference `reinvent_base`) plus DeepRacer console
worlds of other kinds: a 2022 open and pro track (the longest shipped, 76.8 m), a `_ccw`
variant with few rows (79), the smallest 2022 loop and the widest track (Singapore, 1.45 m).
"""

from __future__ import annotations

import re
from pathlib import Path

from deepracer_rl.track import TRACKS_DIR

REPRESENTATIVE_TRACKS = [
    "2022_summit_speedway",
    "Bowtie_track",
    "New_York_Track",
    "Oval_track",
    "Straight_track",
    "Vegas_track",
    "reInvent2019_track",
    "reinvent_base",
    "2022_april_open",
    "2022_march_pro",
    "2022_summit_speedway_mini",
    "reInvent2019_track_ccw",
    "Singapore",
]
# worlds/ holds the Gazebo worlds of these (the tracks shipped before the whole set); any other
# track's world is generated on demand (deepracer_rl.world.world_file): all 95 would be 7 MB.
WORLD_TRACKS = REPRESENTATIVE_TRACKS[:8]
CLOSED_REPRESENTATIVE_TRACKS = [name for name in REPRESENTATIVE_TRACKS if name != "Straight_track"]


def readme_figures(path: Path = TRACKS_DIR / "README.md") -> dict[str, tuple[int, bool, float, float]]:
    """The shipped tracks README's table: name -> (raw rows, closed, centre-line length m, mean width m)."""
    figures = {}
    row = re.compile(r"^\| (\S+)\.npy \| (\d+) \| (closed|open) \| ([\d.]+) \| ([\d.]+) \|$")
    for line in path.read_text(encoding="utf-8").splitlines():
        match = row.match(line)
        if match:
            name, rows, loop, length, width = match.groups()
            figures[name] = (int(rows), loop == "closed", float(length), float(width))
    return figures
