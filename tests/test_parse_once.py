"""Option strings are parsed once, at resolution: checks, builders and theory see typed values only, the
config (summary.json, sweep cell ids) keeps the user's strings, and theory reads both forms alike."""

import numpy as np
import pytest

import theory
from collapse_jax.models import get_setting, registered_settings
from collapse_jax.parameters import Option
from collapse_jax.simulate import predictions_for

# each setting with an option that has a string form, with non-default forms of it
FORMS = {
    "gaussian": dict(dim=3, reward="linear:0.5", curation="tilted"),
    "regression": dict(dim=6, samples=20, spectrum="power:1.5", true_weights="source:0.5", design="fresh"),
    "discrete": dict(law="zipf:1.2", categories=40, groups="head:1-5,tail:20-40", reward="linear:1", curation="tilted"),
    "tails": dict(law="zipf:2.5", categories=500, generator="cut:100", train_sizes="10,100"),
    "mixture": dict(model="ridge:0.3", dim=5, samples=20),
    "kde": dict(bandwidth="0.5"),
}
# forms whose theory has predictions to compare (the curated discrete chain is exact for two categories)
THEORY_FORMS = {
    **{name: form for name, form in FORMS.items() if name != "kde"},  # a recursive KDE has no closed form
    "discrete": dict(law="zipf:1.2", categories=40, groups="head:1-5,tail:20-40"),
    "discrete-reward": dict(law="zipf:1.2", categories=2, reward="linear:1", curation="tilted"),
    "verification": dict(verifier="oracle", keep_correct=0.9, keep_wrong=0.2, label_noise=0.2),
}


def is_option_string(value):
    """An unparsed form: a string other than a bare rule name such as "scott"."""
    return isinstance(value, str) and not value.isalpha()


def parsed_names(definition):
    return [p.name for p in definition.all_parameters if p.parse is not None]


@pytest.mark.parametrize("setting", registered_settings())
def test_values_hold_no_option_string_and_the_config_keeps_them(setting):
    definition = get_setting(setting)
    config = definition.resolve(FORMS.get(setting, {}))
    values = definition.values(config)
    for name in parsed_names(definition):
        assert isinstance(config[name], str), name  # the user's form, for summary.json and cell ids
        assert not is_option_string(values[name]), (name, values[name])


def test_parsed_forms():
    values = get_setting("regression").values(get_setting("regression").resolve(FORMS["regression"]))
    assert values["spectrum"] == Option("power", 1.5) and values["true_weights"] == Option("source", 0.5)
    assert values["full_rank"] is True  # derived, static
    tails = get_setting("tails").values(get_setting("tails").resolve(FORMS["tails"]))
    assert tails["law"] == Option("zipf", 2.5) and tails["generator"] == Option("cut", 100)
    discrete = get_setting("discrete").values(get_setting("discrete").resolve(FORMS["discrete"]))
    np.testing.assert_allclose(discrete["law"].sum(), 1.0)
    assert discrete["groups"] == (("head", 1, 5), ("tail", 20, 40))
    np.testing.assert_allclose(discrete["reward"], np.arange(40) / 39)
    gaussian = get_setting("gaussian").values(get_setting("gaussian").resolve(FORMS["gaussian"]))
    np.testing.assert_allclose(gaussian["reward"], [0.5, 0, 0])
    assert get_setting("gaussian").values(get_setting("gaussian").resolve({}))["reward"] is None
    assert get_setting("kde").values(get_setting("kde").resolve(FORMS["kde"]))["bandwidth"] == 0.5


@pytest.mark.parametrize("setting", sorted(FORMS))
def test_builder_and_check_see_typed_values(setting):
    """`build` and `check` are handed the typed values, never an option string."""
    import dataclasses

    definition = get_setting(setting)
    seen = []

    def spy(function):
        def wrapped(values, *rest):
            seen.append({name: values[name] for name in parsed_names(definition)})
            return function(values, *rest)

        return wrapped

    spied = dataclasses.replace(definition, build=spy(definition.build), check=spy(definition.check))
    config = spied.resolve(FORMS[setting])
    spied.instantiate(config)
    assert len(seen) == 2
    assert all(not is_option_string(value) for entry in seen for value in entry.values())


@pytest.mark.parametrize("case", sorted(THEORY_FORMS))
def test_theory_gets_typed_values_and_reads_both_forms_alike(case, monkeypatch):
    """The simulation hands theory typed values; theory's reading of the string form (for calls by hand)
    gives the same predictions."""
    setting, overrides = case.split("-")[0], THEORY_FORMS[case]
    definition = get_setting(setting)
    config = definition.resolve(overrides)
    predictor = theory.PREDICTORS[setting]
    calls = []

    def recording(metric, **arguments):
        calls.append(arguments)
        return predictor(metric, **arguments)

    monkeypatch.setitem(theory.PREDICTORS, setting, recording)
    typed = predictions_for(setting, config)
    assert calls and all(not is_option_string(call[name]) for call in calls for name in parsed_names(definition))
    if setting == "verification":
        assert calls[0]["verifier"] == "oracle"  # a plain choice; the keep probabilities are numbers
    import jax

    with jax.enable_x64(True):
        by_hand = {name: predictor(name, **config) for name in config["metrics"]}
    compared = 0
    for name, prediction in typed.items():
        other = by_hand[name]
        assert type(prediction) is type(other), name
        if isinstance(prediction, theory.Prediction):
            np.testing.assert_array_equal(np.asarray(prediction.mean), np.asarray(other.mean), err_msg=name)
            compared += 1
    assert compared >= 1, f"no metric of {setting} has a prediction to compare"


def test_a_bad_form_is_refused_at_resolution_naming_its_parameter():
    cases = [
        ("regression", dict(spectrum="power:x"), "spectrum"),
        ("regression", dict(true_weights="source:0.5"), "true_weights"),  # needs a power-law spectrum
        ("discrete", dict(law="pareto:2"), "law"),
        ("discrete", dict(groups="a:0-3"), "groups"),
        ("tails", dict(generator="narrow:1.5"), "generator"),  # BETA2 must exceed the law's BETA = 2
        ("mixture", dict(model="projection:0"), "model"),
        ("gaussian", dict(dim=2, reward="linear:1,2,3"), "reward"),
    ]
    for setting, overrides, name in cases:
        with pytest.raises(ValueError, match=name):
            get_setting(setting).resolve(overrides)


def test_builders_take_values_and_return_only_the_setting():
    """`build(values) -> Setting`: the spec a run executes comes from the chain parameters alone."""
    from collapse_jax.types import Setting

    for setting in ("gaussian", "discrete"):
        definition = get_setting(setting)
        config = definition.resolve({})
        assert isinstance(definition.build(definition.values(config)), Setting)


@pytest.mark.parametrize("setting", registered_settings())
def test_every_free_form_option_has_a_parser(setting):
    """A string parameter without a list of choices has forms to read: it must declare its parser, so
    that no check or builder reads the string again."""
    for parameter in get_setting(setting).all_parameters:
        if parameter.kind is str and parameter.choices is None:
            assert parameter.parse is not None, f"{setting}: {parameter.name} has no parse"
