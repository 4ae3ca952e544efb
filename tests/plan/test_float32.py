"""temperature / top_p are float32 on the service: a float32 echo is no change, a real change is.

The service echoes 0.3 as 0.30000001192092896 (foundry-protocol.md section 11); the planner
compares both sides at float32 precision, shown with the fewest digits that give the same
float32, so the diff of a real change still reads `0.3 -> 0.4`.
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runner.plan.diff import compute_diff
from runner.plan.essence import compute_definition_essence, float32_value


def echo(value: float) -> float:
    """What a float32 store gives back."""
    single: float = struct.unpack("<f", struct.pack("<f", value))[0]
    return single


@pytest.mark.parametrize("value", [0.3, 0.7, 0.1, 0.95, 1.0, 0.0, 2.0, 0.123456789, 1e-8])
def test_an_echo_is_the_same_value(value: float) -> None:
    assert float32_value(echo(value)) == float32_value(value)
    assert echo(value) != value or value in (1.0, 0.0, 2.0)


@given(st.floats(min_value=0, max_value=2, allow_nan=False))
def test_any_echo_compares_equal_and_keeps_its_float32(value: float) -> None:
    shown = float32_value(value)
    assert shown == float32_value(echo(value))
    assert echo(shown) == echo(value)  # the shown value is the same float32


def test_the_definition_essence_rounds_only_the_float32_fields() -> None:
    live = {"kind": "prompt", "model": "m", "temperature": echo(0.3), "top_p": echo(0.9)}
    desired = {"kind": "prompt", "model": "m", "temperature": 0.3, "top_p": 0.9}
    assert compute_diff(compute_definition_essence(live), compute_definition_essence(desired)) == ()
    changed = compute_diff(
        compute_definition_essence(live), compute_definition_essence({**desired, "top_p": 0.91})
    )
    assert [(c.dotted, c.old, c.new) for c in changed] == [("top_p", 0.9, 0.91)]
    other = {"kind": "prompt", "model": "m", "structured_inputs": {"x": {"default_value": 0.3}}}
    assert compute_definition_essence(other)["structured_inputs"]["x"]["default_value"] == 0.3
    assert float32_value(True) is True and float32_value("0.3") == "0.3"
