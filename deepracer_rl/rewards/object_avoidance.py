def reward_function(params):
    """Object avoidance (DeepRacer's boxes or bot cars): stay on the road and be on the other side
    of the centre line from the next object while it is close ahead.

    The gap to the next object is measured along the centre line (metres). The reward per step
    grows with speed, so a lap pays about the same at any speed but sooner when faster. In a time
    trial the objects_* lists are empty and only the road counts.
    """
    if params["is_offtrack"] or params["is_crashed"]:
        return 1e-3
    road = 1.0 if params["all_wheels_on_track"] else 0.3
    avoid = 1.0
    if params["objects_location"]:
        ahead = params["closest_objects"][1]
        gap = (params["objects_distance"][ahead] - params["projection_distance"]) % params["track_length"]
        if params["objects_left_of_center"][ahead] == params["is_left_of_center"]:
            if gap < 0.3:
                avoid = 1e-3
            elif gap < 0.5:
                avoid = 0.2
            elif gap < 0.8:
                avoid = 0.5
    return float((road + 4.0 * avoid) * max(params["speed"], 0.1))
