"""The `paper` mode of `collapse-jax reproduce`: every experiment accepts it and asks for at least its full
sizes. Nothing is simulated: each experiment's `simulate_cells` records the cells it is given and aborts."""

import importlib

import pytest

from collapse_jax.settings import get_setting
from experiments import REGISTRY


class _Recorded(Exception):
    """Raised by the patched `simulate_cells` once it has recorded its cells."""


def _first_cells(module, mode: str, monkeypatch, tmp_path) -> dict:
    """{key: resolved config} of the first batch of cells `module.run` sends to `simulate_cells` in `mode`."""
    seen = {}

    def record(cells, **_):
        seen.update({key: get_setting(setting).resolve(config) for key, (setting, config, _) in cells.items()})
        raise _Recorded

    monkeypatch.setattr(module, "simulate_cells", record)
    with pytest.raises(_Recorded):
        module.run(str(tmp_path / mode), mode=mode, progress=False)
    return seen


def _total(cells: dict, field: str) -> int:
    return sum(int(config[field]) for config in cells.values())


@pytest.mark.parametrize("name", list(REGISTRY))
def test_paper_mode_is_at_least_full(name, monkeypatch, tmp_path):
    """Paper mode reaches the simulator (no KeyError, not the smoke branch) with at least as many cells,
    chains and generations as full mode: in total, at the longest cell, and cell by cell where both
    modes have the same cell."""
    module = importlib.import_module(f"experiments.{REGISTRY[name].module}")
    full = _first_cells(module, "full", monkeypatch, tmp_path)
    paper = _first_cells(module, "paper", monkeypatch, tmp_path)
    assert full and len(paper) >= len(full)
    for field in ("chains", "generations"):
        assert _total(paper, field) >= _total(full, field), field
        assert max(c[field] for c in paper.values()) >= max(c[field] for c in full.values()), field
    for key in full.keys() & paper.keys():
        for field in ("chains", "generations", "samples"):
            if field in full[key]:
                assert paper[key][field] >= full[key][field], (key, field)


def test_reproduce_takes_a_mode_or_the_older_flags():
    from experiments import _mode

    assert [_mode(None, False, False), _mode("paper", False, False), _mode(None, True, False)] == [
        "full",
        "paper",
        "quick",
    ]
    assert _mode("smoke", False, True) == "smoke"
    with pytest.raises(ValueError, match="different modes"):
        _mode("paper", True, False)
    with pytest.raises(ValueError, match="unknown mode"):
        _mode("huge", False, False)
