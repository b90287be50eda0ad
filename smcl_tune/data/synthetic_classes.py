"""The synthetic benchmark's classes by name and its pool size, known without rendering (or torch)."""

SHAPE_NAMES = ["circle", "square", "triangle", "diamond", "plus", "ring", "cross", "hexagon", "ellipse", "half_disk"]
COLOUR_NAMES = ["red", "green", "blue", "yellow", "magenta", "cyan", "orange", "purple", "white", "black"]
SYNTHETIC_POOL_PER_CLASS = 500


def class_name(label: int) -> str:
    """`colour_shape` of a synthetic class."""
    return f"{COLOUR_NAMES[(label + label // 10) % 10]}_{SHAPE_NAMES[label % 10]}"
