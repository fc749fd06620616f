"""The racing recipe of issue 19, item 4 (docs/racing.md, "Training toward the limit"): its action
space holds the racing line's actions plus the recovery actions, its reward embeds the shipped line
and prefers the racing line, and a shipped model (models/racing_reinvent_base/) is intact and laps
reinvent_base within 15 % of the driven optimum."""

from __future__ import annotations

import ast
import functools
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from deepracer_rl.action_space import ActionSpace
from deepracer_rl.raceline import compute_raceline
from deepracer_rl.racing import raceline_action_space, score_along_lines
from deepracer_rl.reward import EXAMPLES_DIR, RewardFunction

REPO = Path(__file__).resolve().parents[1]
METADATA = REPO / "config" / "racing_reinvent_base.json"
REWARD = REPO / "config" / "racing_reinvent_base_reward.py"
MODEL = REPO / "models" / "racing_reinvent_base"
DRIVEN_OPTIMUM_S = 4.867  # docs/racing.md: reinvent_base's line driven from standstill


@functools.lru_cache(maxsize=1)
def _line():
    return compute_raceline("reinvent_base")


def _assignments(path: Path) -> dict:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.targets[0].id: ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
    }


def test_recipe_actions_are_the_lines_plus_recovery():
    pairs = [tuple(a) for a in ActionSpace.load(METADATA).actions]
    line = [tuple(a) for a in raceline_action_space(_line(), n=10).actions]
    assert len(pairs) == 13
    assert np.allclose(pairs[:10], line, atol=0.01)
    assert pairs[10:] == [(-15.0, 2.0), (25.0, 1.5), (20.0, 2.2)]


def test_recipe_reward_embeds_the_shipped_line_and_prefers_it():
    assert _assignments(REWARD)["RACELINE"] == _assignments(EXAMPLES_DIR / "raceline_distance.py")["RACELINE"]
    scores = score_along_lines(RewardFunction(REWARD), _line())
    assert scores["raceline"]["lap_reward"] > scores["centerline"]["lap_reward"]
    assert scores["raceline"]["mean_reward"] > scores["centerline"]["mean_reward"]


@pytest.mark.skipif(not MODEL.exists(), reason="no recipe model shipped")
def test_shipped_recipe_model_is_intact_and_laps_within_15_percent(capsys):
    from deepracer_rl.cli import main

    for line in (MODEL / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split(maxsplit=1)
        assert hashlib.sha256((MODEL / name.lstrip("*")).read_bytes()).hexdigest() == digest, name
    assert main(["evaluate", str(MODEL), "--track", "reinvent_base", "--laps", "1", "--json"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["completed_laps"] == 1
    assert max(report["lap_times_s"]) <= 1.15 * DRIVEN_OPTIMUM_S
    assert np.isfinite(report["lap_times_s"]).all()
