"""Measures written as text, ``"cka[kernel=rbf,sigma=0.5]"``: parsing, labels, lookup."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import repscope
from repscope.core.errors import InvalidParameterError, UnknownMeasureError
from repscope.measures.registry import canonical_name, list_measures, measure_class
from repscope.measures.spec import format_measure, format_value, parse_measure, parse_value
from repscope.report.build import measure_label


# ------------------------------------------------------------------ parsing
@pytest.mark.parametrize("text, name, params", [
    ("cka", "cka", {}),
    ("  cka  ", "cka", {}),
    ("cka[]", "cka", {}),
    ("cka[kernel=rbf]", "cka", {"kernel": "rbf"}),
    ("cka[kernel=rbf,sigma=0.5]", "cka", {"kernel": "rbf", "sigma": 0.5}),
    ("CKA[ kernel = rbf , debiased = true ]", "CKA", {"kernel": "rbf", "debiased": True}),
    ("svcca[n_components=None,var_fraction=0.9]", "svcca",
     {"n_components": None, "var_fraction": 0.9}),
    ("mutual_knn[k=5,metric='cosine']", "mutual_knn", {"k": 5, "metric": "cosine"}),
    ("x[a=-3,b=1e-3,c=False,d=\"a,b=c\",e='1']", "x",
     {"a": -3, "b": 1e-3, "c": False, "d": "a,b=c", "e": "1"}),
])
def test_parse_measure(text: str, name: str, params: dict) -> None:
    parsed = parse_measure(text)
    assert parsed == (name, params)
    assert [type(v) for v in parsed.params.values()] == [type(v) for v in params.values()]


@pytest.mark.parametrize("text, message", [
    ("cka[kernel]", "parameters are written key=value"),
    ("cka[kernel=]", "parameters are written key=value"),
    ("cka[=rbf]", "parameters are written key=value"),
    ("cka[kernel=rbf", "write a name with optional parameters"),
    ("cka[a=1]x", "write a name with optional parameters"),
    ("[a=1]", "write a name with optional parameters"),
    ("", "write a name with optional parameters"),
    ("cka[a=1,a=2]", "gives parameter 'a' twice"),
    ("cka[a='x]", "unclosed quote"),
    ("cka[a=[1,2]]", "inside the parameters"),
])
def test_parse_errors_are_one_line(text: str, message: str) -> None:
    with pytest.raises(InvalidParameterError, match=message) as info:
        parse_measure(text)
    assert "\n" not in str(info.value)


def test_values() -> None:
    assert parse_value("TRUE") is True and parse_value("none") is None
    assert parse_value("null") is None and parse_value("07") == 7
    assert parse_value("1.") == 1.0 and parse_value(".5") == 0.5
    assert math.isinf(parse_value("-inf")) and parse_value("rbf") == "rbf"
    assert parse_value("'true'") == "true" and parse_value('"0.5"') == "0.5"


_values = st.one_of(
    st.booleans(), st.none(), st.integers(-10**6, 10**6),
    st.floats(allow_nan=False, width=64),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12)
    .filter(lambda s: not ("'" in s and '"' in s)),
)


@given(st.dictionaries(st.from_regex(r"[a-z_][a-z0-9_]{0,6}", fullmatch=True), _values,
                       max_size=4))
def test_labels_read_back(params: dict) -> None:
    label = format_measure("m", params)
    back = parse_measure(label)
    assert back.name == "m"
    assert back.params == params
    assert [type(v) for v in back.params.values()] == [type(params[k]) for k in back.params]


def test_format_value_quotes_only_where_needed() -> None:
    assert format_value("rbf") == "rbf"
    assert format_value("1") == "'1'" and format_value("true") == "'true'"
    assert format_value("a,b") == "'a,b'" and format_value("it's") == '"it\'s"'
    assert format_value(0.5) == "0.5" and format_value(None) == "None"


# ------------------------------------------------------------ labels
def _variants():
    for info in list_measures():
        for variant in info.variants:
            if all(isinstance(v, (str, int, float, bool, type(None))) for v in variant.values()):
                yield info.name, variant


@pytest.mark.parametrize("name, variant", list(_variants()))
def test_label_matches_the_report_and_round_trips(name: str, variant: dict) -> None:
    m = repscope.measure(name, **variant)
    label = format_measure(name, m.params, m.info.params)
    assert label == measure_label(name, m.params)  # the report's label, defaults dropped
    again = repscope.measure(label)
    assert again.params == m.params
    assert measure_label(again.info.name, again.params) == label


def test_rows_of_a_parsed_measure_carry_its_params() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((30, 4))
    table = repscope.compare(x, np.tanh(x), measures=["cka[kernel=rbf]", "cka"])
    assert [r["measure"] for r in table] == ["cka", "cka"]
    assert table[0]["params"]["kernel"] == "rbf" and table[1]["params"]["kernel"] == "linear"
    assert [measure_label(r["measure"], r["params"]) for r in table] == ["cka[kernel=rbf]", "cka"]
    assert table[0]["value"] == repscope.measure("cka", kernel="rbf")(x, np.tanh(x))


# ------------------------------------------------------------ lookup
def test_names_are_case_insensitive() -> None:
    assert canonical_name("CKA") == "cka" and canonical_name("Mean_CCA") == "mean_cca"
    assert measure_class("Procrustes") is measure_class("procrustes")
    assert repscope.measure_info("RSA").name == "rsa"
    assert repscope.measure("CKA[KERNEL=rbf]".replace("KERNEL", "kernel")).params["kernel"] \
        == "rbf"


def test_int_for_a_float_parameter_becomes_a_float() -> None:
    m = repscope.measure("cka[kernel=rbf,sigma=1]")
    assert m.params["sigma"] == 1.0 and isinstance(m.params["sigma"], float)
    assert repscope.measure("mutual_knn[k=5]").params["k"] == 5


def test_unknown_parameter_lists_the_measures_parameters() -> None:
    with pytest.raises(InvalidParameterError) as info:
        repscope.measure("cka[kernal=rbf]")
    assert str(info.value) == "cka: unknown parameter(s) kernal; allowed: debiased, kernel, sigma"


def test_conflicting_keyword_is_an_error() -> None:
    with pytest.raises(InvalidParameterError, match="give it once"):
        repscope.measure("cka[kernel=rbf]", kernel="linear")
    assert repscope.measure("cka[kernel=rbf]", kernel="rbf").params["kernel"] == "rbf"
    assert repscope.measure("cka[kernel=rbf]", debiased=True).params["debiased"] is True


def test_unknown_name_suggests_and_names_the_python_function() -> None:
    with pytest.raises(UnknownMeasureError) as info:
        repscope.measure("CKAA[kernel=rbf]")
    msg = str(info.value)
    assert msg.startswith("unknown measure 'CKAA'; did you mean cka")
    assert msg.endswith("(repscope.list_measures() lists all)")


def test_grid_accepts_the_notation() -> None:
    rng = np.random.default_rng(1)
    reps = {("a", "l"): rng.standard_normal((25, 3)), ("b", "l"): rng.standard_normal((25, 3))}
    table = repscope.grid(reps, measures=["CKA[kernel=rbf]"])
    assert len(table) == 1 and table[0]["params"]["kernel"] == "rbf"
