import math

from smcl_tune.config import TrainingConfig
from smcl_tune.trial.lr_schedule import learning_rate_factor


def test_reference_recipe_warms_up_then_drops_at_160_and_180():
    recipe = TrainingConfig()
    assert math.isclose(learning_rate_factor(recipe, 0, 0, 100), 1 / 500)
    assert math.isclose(learning_rate_factor(recipe, 4, 99, 100), 1.0)
    assert learning_rate_factor(recipe, 5, 0, 100) == 1.0
    assert learning_rate_factor(recipe, 159, 99, 100) == 1.0
    assert learning_rate_factor(recipe, 160, 0, 100) == 0.01
    assert learning_rate_factor(recipe, 180, 0, 100) == 0.0001


def test_cosine_warms_up_then_falls_to_zero_half_a_cosine():
    config = TrainingConfig(schedule="cosine", epochs=10, warmup_epochs=2)
    assert math.isclose(learning_rate_factor(config, 0, 0, 100), 1 / 200)
    assert math.isclose(learning_rate_factor(config, 2, 0, 100), 1.0)
    assert math.isclose(learning_rate_factor(config, 6, 0, 100), 0.5)  # half way through the 8 cosine epochs
    assert learning_rate_factor(config, 9, 99, 100) < 0.001


def test_onecycle_rises_from_a_25th_to_the_peak_at_30_percent_then_falls_to_zero():
    config = TrainingConfig(schedule="onecycle", epochs=10)
    assert math.isclose(learning_rate_factor(config, 0, 0, 100), 1 / 25)
    assert math.isclose(learning_rate_factor(config, 3, 0, 100), 1.0)
    assert math.isclose(learning_rate_factor(config, 6, 50, 100), 0.5)  # half way down the cosine
    assert learning_rate_factor(config, 9, 99, 100) < 0.001
    factors = [learning_rate_factor(config, epoch, 0, 1) for epoch in range(10)]
    assert factors[:4] == sorted(factors[:4]) and factors[3:] == sorted(factors[3:], reverse=True)
