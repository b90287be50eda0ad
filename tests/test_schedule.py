import math

from smcl_tune.config import TrainingConfig
from smcl_tune.schedule import learning_rate_factor


def test_reference_recipe_warms_up_then_drops_at_160_and_180():
    recipe = TrainingConfig()
    assert math.isclose(learning_rate_factor(recipe, 0, 0, 100), 1 / 500)
    assert math.isclose(learning_rate_factor(recipe, 4, 99, 100), 1.0)
    assert learning_rate_factor(recipe, 5, 0, 100) == 1.0
    assert learning_rate_factor(recipe, 159, 99, 100) == 1.0
    assert learning_rate_factor(recipe, 160, 0, 100) == 0.01
    assert learning_rate_factor(recipe, 180, 0, 100) == 0.0001


def test_cosine_and_onecycle_end_near_zero():
    for schedule in ("cosine", "onecycle"):
        config = TrainingConfig(schedule=schedule, epochs=10, warmup_epochs=1)
        assert learning_rate_factor(config, 9, 99, 100) < 0.01
        assert max(learning_rate_factor(config, e, 0, 1) for e in range(10)) <= 1.0
