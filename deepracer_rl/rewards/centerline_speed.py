def reward_function(params):
    """Stay near the centre line and go fast: learns a lapping policy in minutes."""
    if params["is_offtrack"]:
        return 1e-3
    half_width = 0.5 * params["track_width"]
    centred = max(0.0, 1.0 - params["distance_from_center"] / half_width)
    return float(centred * (0.5 + 0.5 * params["speed"] / 4.0))
