def reward_function(params):
    """Stay inside the borders and go fast: all four wheels on the road."""
    all_wheels_on_track = params["all_wheels_on_track"]
    distance_from_center = params["distance_from_center"]
    track_width = params["track_width"]
    speed = params["speed"]

    reward = 1e-3
    if all_wheels_on_track and (0.5 * track_width - distance_from_center) >= 0.05:
        reward = 1.0 + 0.5 * speed
    return float(reward)
