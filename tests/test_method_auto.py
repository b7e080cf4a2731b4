"""method = "auto": the exact sufficient-statistic path where a config has one, points elsewhere."""

import pytest

from collapse_jax.settings import get_setting
from collapse_jax.sweep import expand, group_cells, parse_spec


@pytest.mark.parametrize(
    "setting, overrides, expected",
    [
        ("gaussian", {"policy": "replace"}, "sufficient"),
        ("gaussian", {"policy": "accumulate"}, "sufficient"),
        ("gaussian", {"policy": "accumulate-subsample"}, "samples"),
        ("gaussian", {"first_samples": 50}, "samples"),
        ("gaussian", {"real_fraction": 0.5, "real_source": "original"}, "samples"),
        ("gaussian", {"real_fraction": 0.5}, "sufficient"),
        ("regression", {"design": "fixed"}, "sufficient"),
        ("regression", {"design": "fresh", "verifier": "residual"}, "samples"),
        ("discrete", {}, "samples"),
        ("kde", {}, "samples"),
    ],
)
def test_auto_picks_the_sufficient_path_where_it_exists(setting, overrides, expected):
    config = get_setting(setting).resolve({**overrides, "method": "auto"})
    assert config["method"] == expected


def test_auto_keeps_errors_of_the_config():
    with pytest.raises(ValueError, match="samples"):
        get_setting("gaussian").resolve({"method": "auto", "samples": 0})


def test_a_sweep_over_pool_rules_mixes_paths_and_shares_programs_across_sizes():
    spec = parse_spec(
        {
            "setting": "gaussian",
            "name": "auto",
            "fixed": {"method": "auto", "generations": 3},
            "axes": {"samples": [10, 20, 40], "policy": ["replace", "accumulate", "accumulate-subsample"]},
        }
    )
    cells = expand(spec)
    methods = {(c.values["policy"], c.values["samples"]): c.config["method"] for c in cells}
    assert {m for (p, _), m in methods.items() if p != "accumulate-subsample"} == {"sufficient"}
    assert {m for (p, _), m in methods.items() if p == "accumulate-subsample"} == {"samples"}
    # M is traced on the sufficient path: one program per pool rule there, one per M on the sample path
    assert len(group_cells(spec, cells)) == 2 + 3
