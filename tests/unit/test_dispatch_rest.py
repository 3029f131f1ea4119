"""The dispatch loop's rest between decisions (gateway.sending.dispatch): four times the last
decision's length, never more than MAX_REST."""

from __future__ import annotations

import pytest

from gateway.sending.dispatch import MAX_REST, REST_FACTOR, rest_after


@pytest.mark.parametrize("decided_in", [0.0, 0.0005, 0.01, 0.05])
def test_the_rest_is_four_times_the_decision(decided_in: float) -> None:
    assert REST_FACTOR == 4.0
    assert rest_after(decided_in) == pytest.approx(4.0 * decided_in)


@pytest.mark.parametrize("decided_in", [0.0625, 0.75, 30.0])
def test_a_long_decision_rests_at_most_max_rest(decided_in: float) -> None:
    """A decision stretched by a pause of the process (0.75 s would have meant 3 s without
    dispatch) rests MAX_REST."""
    assert rest_after(decided_in) == MAX_REST == 0.25
