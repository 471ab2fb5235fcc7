"""Layered, the users mapping a refreshed snapshot shares with the one it was refreshed from:
any sequence of updates gives the mapping a dict would, and leaves the older mappings as they
were (a check may still be reading one)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from seatgate.core.domain.entitlement import Layered

keys = st.integers(min_value=0, max_value=12)
steps = st.lists(st.tuples(st.lists(st.tuples(keys, st.integers())), st.lists(keys)), max_size=30)


@pytest.mark.parametrize(("floor", "slice_"), [(0, 8192), (0, 1), (2, 3), (4096, 8192)])
@given(start=st.dictionaries(keys, st.integers()), updates=steps)
def test_updates_give_what_a_dict_gives_and_leave_older_mappings_alone(
    floor: int,
    slice_: int,
    start: dict[int, int],
    updates: list[tuple[list[tuple[int, int]], list[int]]],
) -> None:
    # floor 0: merged on almost every update; 4096: never, here. A merge copies ``slice_`` keys
    # per call: 1 and 3 make it take several.
    small = type("Small", (Layered,), {"merge_floor": floor, "merge_slice": slice_})
    layered: Layered[int, int] = small(start)
    model = dict(start)
    history = [(layered, dict(model))]
    for set_, remove in updates:
        layered = layered.updated(set_, remove)
        for key in remove:
            model.pop(key, None)
        model.update(set_)
        history.append((layered, dict(model)))
    for mapping, expected in history:
        assert dict(mapping) == expected
        assert len(mapping) == len(expected)
        assert mapping == expected
        for key in range(14):
            assert (key in mapping) == (key in expected)
            assert mapping.get(key, "none") == expected.get(key, "none")
            if key not in expected:
                with pytest.raises(KeyError):
                    mapping[key]
        probes = list(range(14))
        assert mapping.get_many(probes, "none") == [expected.get(k, "none") for k in probes]
