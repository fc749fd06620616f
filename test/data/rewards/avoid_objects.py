import math


def reward_function(params):
    """Developer-guide style: stay on track, keep the next object at a distance, favour speed.

    Written for races with and without objects: the objects_* lists are empty in a time trial.
    """
    if params["is_offtrack"] or params["is_crashed"]:
        return 1e-3
    reward = 1.0
    objects_location = params["objects_location"]
    if objects_location:
        next_object = params["closest_objects"][1]
        ox, oy = objects_location[next_object]
        distance = math.hypot(ox - params["x"], oy - params["y"])
        same_side = params["objects_left_of_center"][next_object] == params["is_left_of_center"]
        if same_side and distance < 0.8:
            reward *= 0.2
    speed_factor = min(params["speed"], 4.0) / 4.0
    return float(reward * (0.5 + 0.5 * speed_factor))
