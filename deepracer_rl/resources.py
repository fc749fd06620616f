"""Where the package's data files are: the checkout when run from source, else the install."""

from __future__ import annotations

import sys
from pathlib import Path

PACKAGE = "deepracer_rl"


def share_path(*parts: str) -> Path:
    """A file of the package's share dir (urdf/, config/, worlds/, launch/).

    Looks in the source checkout first, then the ament index (a colcon install), then
    `sys.prefix/share/deepracer_rl` (a pip install); returns the last candidate if none exists.
    """
    source = Path(__file__).resolve().parents[1].joinpath(*parts)
    if source.exists():
        return source
    try:
        from ament_index_python.packages import get_package_share_directory
    except ImportError:
        pass
    else:
        try:
            share = Path(get_package_share_directory(PACKAGE)).joinpath(*parts)
        except (LookupError, OSError, ValueError):  # PackageNotFoundError is a KeyError
            pass
        else:
            if share.exists():
                return share
    return Path(sys.prefix, "share", PACKAGE).joinpath(*parts)
