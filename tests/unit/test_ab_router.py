"""The A/B router: stable across processes (unlike Python's salted `hash()`), and splits as asked."""

import os
import subprocess
import sys

import pytest

from ugt_ensemble.errors import ConfigError
from ugt_ensemble.serving.variants import ABTestingRouter

USERS = [f"user-{i}" for i in range(10_000)]


def routes_in_a_new_process(hash_seed: str) -> str:
    code = (
        "import sys; from ugt_ensemble.serving.variants import ABTestingRouter; "
        "r = ABTestingRouter('a', 'b', 0.3); "
        "print(''.join('A' if r.route(f'user-{i}') == 'a' else 'B' for i in range(10_000)))"
    )
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout


def test_the_same_user_lands_on_the_same_variant_in_every_process():
    here = "".join("A" if ABTestingRouter("a", "b", 0.3).route(u) == "a" else "B" for u in USERS)
    assert routes_in_a_new_process("1").strip() == here == routes_in_a_new_process("2").strip()


@pytest.mark.parametrize("split", [0.0, 0.1, 0.5, 0.9, 1.0])
def test_the_split_is_within_two_points_of_the_target_over_ten_thousand_users(split):
    router = ABTestingRouter("a", "b", split)
    share = sum(router.route(u) == "a" for u in USERS) / len(USERS)
    assert abs(share - split) <= 0.02, share


def test_integer_and_string_ids_of_the_same_user_agree_and_a_bad_split_is_refused():
    router = ABTestingRouter("a", "b", 0.5)
    assert all(router.route(i) == router.route(str(i)) for i in range(1000))
    with pytest.raises(ConfigError, match="traffic_split"):
        ABTestingRouter("a", "b", 1.5)
