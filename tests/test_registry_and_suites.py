import numpy as np
import pytest

from bench.core.registry import Registry, UnknownNameError
from bench.sim.suites import SUITES, Protocol, get_suite, parse_task_ids


def test_unknown_name_suggests_and_lists_choices():
    reg = Registry("thing")
    reg.add("libero_spatial", 1)
    reg.add("libero_10", 2, aliases=("libero_long",))
    with pytest.raises(UnknownNameError) as exc:
        reg.get("libero_spatail")
    msg = str(exc.value)
    assert "Did you mean 'libero_spatial'" in msg
    assert "libero_10" in msg and "libero_long" in msg
    assert reg.get("libero_long") == 2
    with pytest.raises(ValueError):
        reg.add("libero_long", 3)


def test_suite_registry_has_the_libero_suites_and_pro_variants():
    for name in ["libero_spatial", "libero_object", "libero_goal", "libero_10", "libero_90"]:
        assert name in SUITES
    for base in ["libero_spatial", "libero_object", "libero_goal", "libero_10"]:
        for v in ["lan", "object", "swap", "task"]:
            assert f"{base}_{v}" in SUITES
    assert get_suite("libero_long") is get_suite("libero_10")
    assert get_suite("libero_long").protocol.max_steps == 520
    assert get_suite("libero_spatial").protocol.max_steps == 220


def test_protocol_hash_is_stable_and_sensitive():
    p = Protocol(max_steps=220)
    assert p.hash() == Protocol(max_steps=220).hash()
    assert len({p.hash(), p.replace(max_steps=280).hash(), p.replace(seed=8).hash(),
                p.replace(flip_images=False).hash(), p.replace(executed_chunk=4).hash()}) == 5


def test_parse_task_ids():
    assert parse_task_ids(None, 10) == list(range(10))
    assert parse_task_ids("0,3-5", 10) == [0, 3, 4, 5]
    assert parse_task_ids("5,5,1", 10) == [1, 5]
    for bad in ["12", "a", "5-3", "-1"]:
        with pytest.raises(ValueError):
            parse_task_ids(bad, 10)


def test_libero_tasks_and_init_states_come_from_the_bundled_package():
    long = get_suite("libero_long")
    tasks = long.tasks()
    assert len(tasks) == 10
    assert all(t.language and t.env_id.endswith(".bddl") for t in tasks)
    init = long.initial_conditions(0)
    assert init.ndim == 2 and init.shape[0] == 50 and np.isfinite(init).all()
    assert len(get_suite("libero_90").tasks()) == 90
    assert len(get_suite("libero_spatial_swap").tasks()) == 10
