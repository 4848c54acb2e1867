"""Every invalid config field fails at once with a message naming the field and the value."""

import pytest

from mtl_teach.config import ConfigError, TrainConfig

BAD_VALUES = [
    ("strategy", "sum_it_all"),
    ("alpha", -0.5),
    ("beta", float("nan")),
    ("alpha", True),
    ("optimizer", "rmsprop"),
    ("lr", 0.0),
    ("lr", -0.01),
    ("lr", float("inf")),
    ("momentum", 1.5),
    ("steps", 0),
    ("steps", 2.5),
    ("batch_size", 0),
    ("seed", -1),
    ("relatedness", 1.5),
    ("regression_scale", 0.0),
    ("n_samples", 1),
    ("n_features", 1),
    ("hidden", ()),
    ("hidden", (32, 0)),
    ("hidden", 32),
    ("hidden", "32"),
    ("classification_loss", "hinge"),
    ("task_order", (0, 0)),
    ("task_order", 5),
    ("task_order", ("a", 1)),
    ("task_order", (0, 1.0)),
    ("dtype", "float16"),
]


@pytest.mark.parametrize("field, value", BAD_VALUES)
def test_bad_value_names_field_and_value(field, value):
    with pytest.raises(ConfigError) as info:
        TrainConfig(**{field: value})
    message = str(info.value)
    assert message.startswith(f"{field}={value!r}")
    assert "must be" in message  # and says what is allowed


def test_both_weights_zero_is_refused():
    with pytest.raises(ConfigError, match=r"alpha, beta=\(0.0, 0.0\).*not both zero"):
        TrainConfig(alpha=0.0, beta=0.0)


def test_alternating_steps_refuses_a_deep_trunk_and_says_why():
    with pytest.raises(ConfigError) as info:
        TrainConfig(strategy="alternating_steps", hidden=(16, 16))
    message = str(info.value)
    assert message.startswith("hidden=(16, 16) is not allowed with strategy='alternating_steps'")
    assert "modified by an inplace operation" in message and "set" in message and "None" in message


def test_a_strategy_rule_is_the_registry_entrys_not_the_configs():
    from mtl_teach.registry import STRATEGIES

    assert STRATEGIES["alternating_steps"].check(TrainConfig(hidden=(8,))) is None
    assert "hidden=(8, 8)" in STRATEGIES["alternating_steps"].check(TrainConfig(hidden=(8, 8)))
    assert TrainConfig(strategy="weighted_sum", hidden=(16, 16)).hidden == (16, 16)


@pytest.mark.parametrize(
    "sizes",
    [
        dict(n_samples=10_000_000, n_features=100_000),
        dict(hidden=(100_000, 100_000)),
        dict(n_features=100_000, hidden=(50_000,)),
    ],
)
def test_a_run_too_large_for_memory_is_refused_before_allocating(sizes):
    with pytest.raises(ConfigError, match=r"would need about [\d.e+]+ GB .* the limit is 2 GB"):
        TrainConfig(**sizes)


def test_replace_validates_and_rejects_unknown_fields():
    config = TrainConfig()
    assert config.replace(alpha=0.9).alpha == 0.9
    with pytest.raises(ConfigError, match="lr=0"):
        config.replace(lr=0)
    with pytest.raises(ConfigError, match="unknown config field.*'alhpa'"):
        config.replace(alhpa=0.9)


def test_lists_become_tuples_so_configs_compare_and_hash():
    config = TrainConfig(hidden=[16], task_order=[1, 0])
    assert config == TrainConfig(hidden=(16,), task_order=(1, 0))
    assert hash(config) == hash(TrainConfig(hidden=(16,), task_order=(1, 0)))
    assert config.weights == (0.5, 0.5)
