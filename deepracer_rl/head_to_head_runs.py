"""`deepracer-rl evaluate MODEL --race-type head_to_head --opponent MODEL_B`: two drivers, one track.

Each side is what `evaluate` takes (a run, a model .zip, an export dir, a shipped model's name, or
`baseline`, the scripted driver); the laps are `head_to_head.run_head_to_head` over a two-car
`RaceCore(head_to_head=True)`. Both policies see through one camera setting (the simulator
renders one), so two policies that see otherwise are refused with both settings named.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from .action_space import ActionSpace
from .episode import evaluation_start_poses
from .evaluate_runs import Subject, load_subject
from .head_to_head import HeadToHeadReport, RowDriver, baseline_rows, policy_rows, run_head_to_head
from .race import RaceCore
from .track import Track
from .track_set import TrackSet


@dataclass
class HeadToHeadEvaluation:
    """A head-to-head evaluation: the two drivers' labels, the track, the seed and the report."""

    labels: tuple[str, str]
    track: str
    seed: int | None
    report: HeadToHeadReport

    def as_dict(self) -> dict[str, Any]:
        return {"track": self.track, "seed": self.seed, **self.report.as_dict(self.labels)}


def _row_driver(subject: Subject) -> RowDriver:
    if subject.model is None:
        return baseline_rows()
    metadata = subject.race["metadata"]
    actions = metadata if isinstance(metadata, ActionSpace) else ActionSpace.load(metadata)
    return policy_rows(subject.model, actions)


def _sees(subject: Subject) -> tuple[Any, tuple[str, ...]] | None:
    """What a policy subject sees (observation, sensors); None for the scripted driver."""
    if subject.model is None:
        return None
    metadata = subject.race["metadata"]
    actions = metadata if isinstance(metadata, ActionSpace) else ActionSpace.load(metadata)
    return subject.race.get("observation"), tuple(actions.sensor)


def evaluate_head_to_head(
    target: str | os.PathLike | None,
    opponent: str,
    driver: str = "policy",
    track: str | os.PathLike | Track | None = None,
    laps: int = 3,
    seed: int | None = None,
    off_track_penalty: float | None = None,
) -> HeadToHeadEvaluation:
    """Race `target` (car 0; `driver` "baseline": the scripted driver) against `opponent` (car 1: a
    model as `target`, or "baseline") for `laps` laps from starts spread round `track` (default: car
    0's track, else reinvent_base; `episode.evaluation_start_poses`), the leader alternating."""
    if laps < 1:
        raise ValueError(f"--laps must be at least 1, got {laps}")
    if not opponent:
        raise ValueError("--race-type head_to_head races two cars: give --opponent MODEL or --opponent baseline")
    first = load_subject(target, driver)
    try:
        second = load_subject(None, "baseline") if opponent == "baseline" else load_subject(opponent)
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"--opponent {exc}") from None
    views = [v for v in (_sees(first), _sees(second)) if v is not None]
    if len(views) == 2 and views[0] != views[1]:
        raise ValueError(
            f"{first.label} sees {views[0][0]} with {list(views[0][1])}, {second.label} sees {views[1][0]} with "
            f"{list(views[1][1])}: both cars of a head-to-head race see through the same camera settings"
        )
    race = dict(first.race if first.model is not None or second.model is None else second.race)
    race.pop("objects", None)  # the other car is the only object
    default = race.pop("track")
    if isinstance(default, TrackSet):  # a run on several tracks or directions: its first track, as-is
        default = default.tracks[0]
    chosen = track if track is not None else (default[0] if isinstance(default, list) else default)
    one = chosen if isinstance(chosen, Track) else Track.load(chosen)
    race.pop("direction", None)
    core = RaceCore.create(one, n_cars=2, seed=seed, head_to_head=True, **race)
    try:
        report = run_head_to_head(
            core,
            [_row_driver(first), _row_driver(second)],
            laps,
            off_track_penalty,
            starts=evaluation_start_poses(core.track, laps, seed),
        )
    finally:
        core.close()
    return HeadToHeadEvaluation((first.label, second.label), one.name, seed, report)


def format_head_to_head(result: HeadToHeadEvaluation) -> str:
    """A few lines for the terminal: per car laps, times, collisions and penalties; the winner."""
    lines = [f"head-to-head on {result.track}, {len(result.report.leaders)} laps"]
    for k, (label, report) in enumerate(zip(result.labels, result.report.cars)):
        times = ", ".join(f"{t:.2f}" for t in report.lap_times_s) or "-"
        lines.append(
            f"  car {k} {label}: {report.completed_laps}/{report.laps} laps ({times} s), "
            f"{report.collisions} collisions, {report.off_track} off track, penalties {report.penalty_s:g} s, "
            f"first in {result.report.firsts.count(k)} laps"
        )
    winner = result.report.winner
    lines.append("  winner: " + ("tie" if winner is None else f"car {winner} {result.labels[winner]}"))
    return "\n".join(lines)
