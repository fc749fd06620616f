def reward_function(params):
    """Stay near the centre line and go fast.

    The reward per step grows with speed, so a lap earns about the same total at any speed
    but sooner when faster: with discounting the policy learns to hurry. Leaving the track
    ends the episode and forfeits what the rest of the lap would have paid.
    """
    if params["is_offtrack"]:
        return 1e-3
    half_width = 0.5 * params["track_width"]
    centred = max(0.0, 1.0 - params["distance_from_center"] / half_width)
    return float((0.2 + centred) * params["speed"])
