import itertools
import json
import math
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from hybrid_platform import config
from hybrid_platform.model import (
    DERIVED_INPUT_NAMES,
    RULES_ONLY_VERSION,
    HotReloadingModel,
    LogisticRegressionParameters,
    ModelArtifact,
    ModelError,
    ModelRegistry,
    check_compatible,
    compile_model,
    model_inputs,
    registry_root,
    score,
    score_features,
    sigmoid,
)

FEATURES = {
    "txn_count_1m": 1.0,
    "amount_sum_1m": 12.5,
    "txn_count_1h": 3.0,
    "amount_sum_1h": 80.0,
    "distinct_countries_10m": 1.0,
    "seconds_since_prev_txn": 120.0,
}


def make_artifact(version: str = "lr-20261124T101500Z-ab12cd", **changes: Any) -> ModelArtifact:
    artifact = ModelArtifact(
        model_version=version,
        kind="logistic_regression",
        feature_names=("txn_count_1m", "log1p_amount", "channel=online", "mcc_risk=high"),
        feature_spec_version="card_features/v1",
        parameters=LogisticRegressionParameters(
            means=(1.5, 3.0, 0.3, 0.05),
            stds=(1.2, 1.1, 0.45, 0.2),
            coefficients=(0.8, 0.6, 0.4, 1.3),
            intercept=-4.0,
        ),
        threshold=0.7,
        metrics={"auc_pr": 0.81, "auc_roc": 0.97},
        trained_on={"table": "silver.transactions", "snapshot_id": "6134592104598417522"},
        code_version="c80c5c7",
        created_at="2026-11-24T10:15:00+00:00",
    )
    return replace(artifact, **changes) if changes else artifact


def artifact_document(**changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(make_artifact().to_json())
    document.update(changes)
    return document


# --- inputs and scoring ---------------------------------------------------------------------------------


def test_model_inputs_derive_log_amount_and_one_hot_indicators() -> None:
    inputs = model_inputs(FEATURES, 99.0, "7995", "online", "DE")
    assert inputs == pytest.approx(
        FEATURES
        | {
            "log1p_amount": math.log(100.0),
            "channel=pos": 0.0,
            "channel=online": 1.0,
            "channel=atm": 0.0,
            "mcc_risk=high": 1.0,
            "country=DE": 1.0,
        }
    )
    assert set(DERIVED_INPUT_NAMES) <= set(inputs)
    low_risk = model_inputs(FEATURES, -3.0, "5411", "pos", "FR")
    # A malformed negative amount must not make log1p raise.
    assert (low_risk["mcc_risk=high"], low_risk["log1p_amount"]) == pytest.approx((0.0, 0.0))


def test_score_matches_the_standardised_formula() -> None:
    artifact = make_artifact()
    inputs = model_inputs(FEATURES, 250.0, "7995", "online", "DE")
    p = artifact.parameters
    z = p.intercept + sum(
        c * (inputs.get(name, 0.0) - m) / s
        for name, m, s, c in zip(artifact.feature_names, p.means, p.stds, p.coefficients, strict=True)
    )
    expected = 1.0 / (1.0 + math.exp(-z))
    assert score(artifact, inputs) == pytest.approx(expected, rel=1e-12)
    assert score(compile_model(artifact), inputs) == pytest.approx(expected, rel=1e-12)
    assert score_features(artifact, FEATURES, 250.0, "7995", "online", "DE") == pytest.approx(expected, rel=1e-12)


def test_missing_inputs_count_as_zero_and_constant_features_are_ignored() -> None:
    artifact = make_artifact(
        parameters=LogisticRegressionParameters(
            means=(0.0, 0.0, 0.0, 7.0), stds=(1.0, 1.0, 1.0, 0.0), coefficients=(1.0, 2.0, 3.0, 5.0), intercept=0.5
        )
    )
    assert score(artifact, {}) == pytest.approx(sigmoid(0.5))
    assert score(artifact, {"mcc_risk=high": 100.0}) == pytest.approx(sigmoid(0.5))
    assert score(artifact, {"txn_count_1m": 1.0}) == pytest.approx(sigmoid(1.5))


def test_score_is_monotonic_in_a_positive_coefficient_input() -> None:
    model = make_artifact().compiled
    scores = [model.score({"txn_count_1m": float(count)}) for count in range(0, 40)]
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert all(later > earlier for earlier, later in itertools.pairwise(scores) if later < 1.0)
    assert scores[-1] > scores[0]


def test_sigmoid_is_stable_at_extremes() -> None:
    assert sigmoid(1000.0) == pytest.approx(1.0)
    assert sigmoid(-1000.0) == pytest.approx(0.0)
    assert sigmoid(0.0) == pytest.approx(0.5)
    assert sigmoid(-30.0) > 0.0  # no underflow to 0 for ordinary large margins
    model = make_artifact().compiled
    assert model.score({"txn_count_1m": 1e6}) == pytest.approx(1.0)
    assert model.score({"txn_count_1m": -1e6}) == pytest.approx(0.0)


def test_compiled_model_is_cached_on_the_artifact() -> None:
    artifact = make_artifact()
    assert artifact.compiled is artifact.compiled
    assert artifact.compiled.model_version == artifact.model_version
    assert artifact.compiled.threshold == pytest.approx(0.7)


def test_check_compatible() -> None:
    artifact = make_artifact()
    check_compatible(artifact, "card_features/v1")
    check_compatible(artifact.compiled, "card_features/v1")
    with pytest.raises(ModelError, match=r"card_features/v1.*card_features/v2") as raised:
        check_compatible(artifact, "card_features/v2")
    assert "\n" not in str(raised.value)


# --- JSON ------------------------------------------------------------------------------------------------


def test_json_round_trip_is_exact_and_stable() -> None:
    artifact = make_artifact()
    text = artifact.to_json()
    again = ModelArtifact.from_json(text)
    assert again == artifact
    assert again.to_json() == text
    assert list(json.loads(text)) == sorted(json.loads(text))
    assert isinstance(again.feature_names, tuple) and isinstance(again.parameters.means, tuple)


def test_json_accepts_integers_for_numbers() -> None:
    document = artifact_document(threshold=1)
    document["parameters"]["intercept"] = -4
    assert ModelArtifact.from_json(json.dumps(document)).threshold == pytest.approx(1.0)


def _with_parameters(**changes: Any) -> dict[str, Any]:
    document = artifact_document()
    document["parameters"].update(changes)
    return document


def _without(name: str) -> dict[str, Any]:
    document = artifact_document()
    del document[name]
    return document


def _without_parameter(name: str) -> dict[str, Any]:
    document = artifact_document()
    del document["parameters"][name]
    return document


INVALID_DOCUMENTS = {
    "wrong format_version": (artifact_document(format_version=2), r"format_version 2 is not supported"),
    "format_version is a bool": (artifact_document(format_version=True), r"'format_version' must be int"),
    "missing format_version": (_without("format_version"), r"missing field 'format_version'"),
    "missing threshold": (_without("threshold"), r"missing field 'threshold'"),
    "missing created_at": (_without("created_at"), r"missing field 'created_at'"),
    "missing coefficients": (_without_parameter("coefficients"), r"missing 'coefficients'"),
    "unknown field": (artifact_document(owner="me"), r"unknown fields \['owner'\]"),
    "unknown kind": (artifact_document(kind="gbt"), r"kind 'gbt' is not supported"),
    "too few coefficients": (_with_parameters(coefficients=[0.8, 0.6, 0.4]), r"3 coefficients for 4 feature_names"),
    "too many means": (_with_parameters(means=[0, 0, 0, 0, 0]), r"5 means for 4 feature_names"),
    "extra feature name": (
        artifact_document(feature_names=["a", "b", "c", "d", "e"]),
        r"4 means for 5 feature_names",
    ),
    "duplicate feature names": (artifact_document(feature_names=["a", "a", "b", "c"]), r"duplicates"),
    "no features": (artifact_document(feature_names=[]), r"feature_names is empty"),
    "negative std": (_with_parameters(stds=[1, -1, 1, 1]), r"stds must not be negative"),
    "string coefficient": (_with_parameters(coefficients=["1", 0, 0, 0]), r"list of numbers"),
    "threshold above 1": (artifact_document(threshold=1.5), r"threshold 1.5 is not between 0 and 1"),
    "threshold is text": (artifact_document(threshold="0.5"), r"'threshold' must be a number"),
    "metric is text": (artifact_document(metrics={"auc_pr": "high"}), r"'auc_pr' must be a number"),
    "trained_on not strings": (artifact_document(trained_on={"snapshot_id": 1}), r"map names to strings"),
    "unsafe model_version": (artifact_document(model_version="../../etc"), r"model_version must be"),
    "bad created_at": (artifact_document(created_at="yesterday"), r"not an ISO 8601 timestamp"),
    "empty feature spec": (artifact_document(feature_spec_version=""), r"feature_spec_version is empty"),
    "parameters not an object": (artifact_document(parameters=[1, 2]), r"'parameters' must be an object"),
}


@pytest.mark.parametrize("document,message", INVALID_DOCUMENTS.values(), ids=list(INVALID_DOCUMENTS))
def test_invalid_artifacts_are_refused_with_one_line(document: dict[str, Any], message: str) -> None:
    with pytest.raises(ModelError, match=message) as raised:
        ModelArtifact.from_json(json.dumps(document))
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(
    "text,message",
    [
        ("{not json", r"not valid JSON"),
        ("[1, 2]", r"must be a JSON object"),
        (make_artifact().to_json().replace("-4.0", "NaN"), r"contains NaN"),
        (make_artifact().to_json().replace("-4.0", "-Infinity"), r"contains -Infinity"),
        (make_artifact().to_json().replace("-4.0", "-1e999"), r"intercept is -inf"),
        (make_artifact().to_json().replace("0.81", "1e999"), r"metric 'auc_pr' is inf"),
    ],
    ids=["syntax", "array", "nan", "infinity", "overflowing-intercept", "overflowing-metric"],
)
def test_unparseable_artifacts_are_refused_with_one_line(text: str, message: str) -> None:
    with pytest.raises(ModelError, match=message) as raised:
        ModelArtifact.from_json(text)
    assert "\n" not in str(raised.value)


def test_constructor_validates_too() -> None:
    with pytest.raises(ModelError, match="intercept is nan"):
        make_artifact(
            parameters=LogisticRegressionParameters(
                means=(0.0,) * 4, stds=(1.0,) * 4, coefficients=(1.0,) * 4, intercept=math.nan
            )
        )
    with pytest.raises(ModelError, match="metric 'auc_pr' is nan"):
        make_artifact(metrics={"auc_pr": math.nan})
    with pytest.raises(ModelError, match="format_version 2"):
        make_artifact(format_version=2)


# --- registry --------------------------------------------------------------------------------------------


def test_registry_root_defaults_under_home_and_follows_the_variable(tmp_path: Path) -> None:
    cfg = config.load({"HDP_HOME": str(tmp_path)})
    assert registry_root(cfg, {}) == tmp_path / "models"
    shared = tmp_path / "shared" / "registry"
    assert registry_root(cfg, {"HDP_MODEL_REGISTRY": str(shared)}) == shared


def test_register_get_list_and_promote(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "models")
    assert registry.list_versions() == []
    assert registry.champion() is None
    first, second = make_artifact("lr-1"), make_artifact("lr-2", threshold=0.6)
    path = registry.register(second)
    registry.register(first)
    assert path == tmp_path / "models" / "lr-2" / "model.json"
    assert registry.list_versions() == ["lr-1", "lr-2"]
    assert registry.get("lr-2") == second

    registry.promote("lr-1")
    assert registry.champion() == first
    registry.promote("lr-2")
    assert registry.champion() == second
    pointer = json.loads(registry.champion_path.read_text())
    assert pointer["model_version"] == "lr-2" and pointer["promoted_at"]
    # Atomic writes leave no temporary files behind for readers or list_versions to trip over.
    assert sorted(p.name for p in registry.root.iterdir()) == ["champion.json", "lr-1", "lr-2"]
    assert os.listdir(registry.root / "lr-2") == ["model.json"]


def test_register_refuses_to_overwrite_a_different_artifact(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    path = registry.register(make_artifact("lr-1"))
    assert registry.register(make_artifact("lr-1")) == path  # the same artifact again is harmless
    with pytest.raises(ModelError, match="already registered") as raised:
        registry.register(make_artifact("lr-1", threshold=0.2))
    assert "\n" not in str(raised.value)
    assert registry.get("lr-1").threshold == pytest.approx(0.7)
    assert os.listdir(tmp_path / "lr-1") == ["model.json"]


def test_promote_and_get_refuse_unknown_versions(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    with pytest.raises(ModelError, match="not registered"):
        registry.promote("lr-missing")
    assert not registry.champion_path.exists()
    with pytest.raises(ModelError, match="not a model version"):
        registry.get("../outside")


def test_promote_replaces_the_pointer_atomically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    registry = ModelRegistry(tmp_path)
    registry.register(make_artifact("lr-1"))
    registry.register(make_artifact("lr-2"))
    registry.promote("lr-1")
    replaced: list[tuple[str, str]] = []
    real_replace = os.replace

    def spy_replace(source: str, target: str) -> None:
        # When the pointer is swapped in, the new content is already complete in the temporary file.
        assert json.loads(Path(source).read_text())["model_version"] == "lr-2"
        assert json.loads(Path(target).read_text())["model_version"] == "lr-1"
        replaced.append((source, target))
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", spy_replace)
    registry.promote("lr-2")
    assert len(replaced) == 1 and Path(replaced[0][1]) == registry.champion_path
    assert Path(replaced[0][0]).parent == registry.champion_path.parent


def test_corrupt_files_surface_as_model_errors(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    registry.register(make_artifact("lr-1"))
    registry.champion_path.write_text('{"model_version": ')
    with pytest.raises(ModelError, match=r"champion\.json is not valid JSON"):
        registry.champion()
    registry.champion_path.write_text('{"model_version": "lr-9"}')
    with pytest.raises(ModelError, match="lr-9 is not registered"):
        registry.champion()
    (tmp_path / "lr-1" / "model.json").write_text("{}")
    with pytest.raises(ModelError, match=r"lr-1/model.json: .*missing field"):
        registry.get("lr-1")


# --- hot reload -----------------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_hot_reload_without_champion_is_rules_only(tmp_path: Path) -> None:
    clock = FakeClock()
    model = HotReloadingModel(ModelRegistry(tmp_path), check_interval_s=5.0, clock=clock)
    assert model.current() is None
    assert model.model_version == RULES_ONLY_VERSION
    assert model.last_error is None


def test_hot_reload_picks_up_a_promotion_after_the_interval_and_not_before(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    registry.register(make_artifact("lr-1"))
    registry.register(make_artifact("lr-2"))
    registry.promote("lr-1")
    clock = FakeClock()
    model = HotReloadingModel(registry, check_interval_s=5.0, clock=clock)
    first = model.current()
    assert first is not None and first.model_version == "lr-1"

    registry.promote("lr-2")
    clock.now += 4.9
    assert model.current() is first
    assert model.model_version == "lr-1"
    clock.now += 0.1
    current = model.current()
    assert current is not None and current.model_version == "lr-2"
    assert model.model_version == "lr-2" and model.last_error is None
    clock.now += 5.0
    assert model.current() is current  # unchanged pointer: the same compiled model, nothing re-parsed


def test_hot_reload_only_stats_until_the_pointer_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    registry = ModelRegistry(tmp_path)
    registry.register(make_artifact("lr-1"))
    registry.promote("lr-1")
    clock = FakeClock()
    model = HotReloadingModel(registry, check_interval_s=5.0, clock=clock)
    parsed: list[str] = []
    real_champion_version = registry.champion_version

    def counting_champion_version() -> str | None:
        parsed.append("champion.json")
        return real_champion_version()

    monkeypatch.setattr(registry, "champion_version", counting_champion_version)
    for _ in range(3):
        clock.now += 5.0
        model.current()
    assert parsed == []
    registry.promote("lr-1")  # re-promoted: a new file, parsed once
    clock.now += 5.0
    model.current()
    clock.now += 5.0
    model.current()
    assert parsed == ["champion.json"]


def test_hot_reload_survives_a_corrupt_champion_and_recovers(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    registry.register(make_artifact("lr-1"))
    registry.register(make_artifact("lr-2"))
    registry.promote("lr-1")
    clock = FakeClock()
    model = HotReloadingModel(registry, check_interval_s=5.0, clock=clock)

    registry.champion_path.write_text('{"model_vers')  # a non-atomic writer caught half-way
    clock.now += 5.0
    current = model.current()
    assert current is not None and current.model_version == "lr-1"
    assert model.last_error is not None and "not valid JSON" in model.last_error
    assert "\n" not in model.last_error

    registry.champion_path.write_text('{"model_version": "lr-404"}')  # points at nothing
    clock.now += 5.0
    assert model.model_version == "lr-1" and model.current() is current
    assert model.last_error is not None and "lr-404" in model.last_error

    registry.champion_path.unlink()
    clock.now += 5.0
    assert model.current() is current
    assert model.last_error is not None and "disappeared" in model.last_error

    registry.promote("lr-2")
    clock.now += 5.0
    recovered = model.current()
    assert recovered is not None and recovered.model_version == "lr-2"
    assert model.last_error is None


def test_hot_reload_refuses_an_incompatible_model(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    registry.register(make_artifact("lr-1"))
    registry.register(make_artifact("lr-2", feature_spec_version="card_features/v2"))
    registry.promote("lr-1")
    clock = FakeClock()
    model = HotReloadingModel(registry, clock=clock, expected_feature_spec_version="card_features/v1")
    registry.promote("lr-2")
    clock.now += 5.0
    current = model.current()
    assert current is not None and current.model_version == "lr-1"
    assert model.last_error is not None and "card_features/v2" in model.last_error


def test_hot_reload_starts_from_a_broken_registry_without_raising(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    registry.root.mkdir(exist_ok=True)
    registry.champion_path.write_text("garbage")
    model = HotReloadingModel(registry, clock=FakeClock())
    assert model.current() is None
    assert model.model_version == RULES_ONLY_VERSION
    assert model.last_error is not None
