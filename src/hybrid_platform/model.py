"""The portable fraud model: artifact format, fast scoring, the file-based registry and hot reload.

Spark MLlib trains the model in batch and writes a ``ModelArtifact`` (plain JSON, no pickles, no JVM);
Flink scores every transaction with it inside a Python UDF. Scoring therefore stays pure Python with
the parameters folded into tuples once (``CompiledModel``), and the registry is only files: immutable
``<root>/<model_version>/model.json`` plus a ``<root>/champion.json`` pointer replaced atomically, which
a running job polls (``HotReloadingModel``) to pick up a newly promoted model without a restart.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

from hybrid_platform.config import PlatformConfig

FORMAT_VERSION = 1
KIND_LOGISTIC_REGRESSION = "logistic_regression"
#: What ``model_version`` reports when no champion is loaded and only the rules score.
RULES_ONLY_VERSION = "rules-only"
MODEL_FILE = "model.json"
CHAMPION_FILE = "champion.json"
#: Lets a cluster point every job at shared storage instead of ``$HDP_HOME/models``.
REGISTRY_ENV_VAR = "HDP_MODEL_REGISTRY"

#: Merchant categories with high fraud rates and easy cash-out: gambling (7995), quasi-cash (6051),
#: money transfer (4829), direct marketing / inbound telemarketing (5967), tobacco and smoke shops
#: (5993) and pay-per-call dating and escort services (7273). The rules reuse this set.
HIGH_RISK_MCCS = frozenset({"7995", "6051", "4829", "5967", "5993", "7273"})
CHANNELS = ("pos", "online", "atm")

# Names of the inputs ``model_inputs`` derives from the raw transaction. The trainer uses the per-card
# feature names plus these, and may add ``country=<CC>`` indicators for the countries it chooses.
LOG1P_AMOUNT = "log1p_amount"
CHANNEL_INPUTS = tuple(f"channel={channel}" for channel in CHANNELS)
MCC_RISK_HIGH = "mcc_risk=high"
DERIVED_INPUT_NAMES = (LOG1P_AMOUNT, *CHANNEL_INPUTS, MCC_RISK_HIGH)

# A model version names a directory of the registry, so it must be one safe path component.
_MODEL_VERSION_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_T = TypeVar("_T")


class ModelError(ValueError):
    """A model artifact or the registry is unusable; the message is one line saying what and where."""


@dataclass(frozen=True)
class DerivedInput:
    """A model input derived from one transaction field, as data so every scorer derives it alike.

    ``log1p``: ``log1p(field)`` (0 for a non-positive value) named ``name``; ``one_hot``: ``<field>=<value>``
    = 1.0 for each of ``values``, 1.0 on the record's value; ``in_set``: ``name`` = 1.0 when the field is in
    ``values``; ``indicator``: ``<field>=<the record's value>`` = 1.0 (whatever the value).
    """

    kind: str
    field: str
    name: str = ""
    values: tuple[str, ...] = ()


#: What ``model_inputs`` adds to the per-card features (the Java operator reads the same list).
MODEL_INPUTS: tuple[DerivedInput, ...] = (
    # Amounts are heavy-tailed; the log keeps a linear model from being dominated by a few huge ones.
    DerivedInput("log1p", "amount", name=LOG1P_AMOUNT),
    DerivedInput("one_hot", "channel", values=CHANNELS),
    DerivedInput("in_set", "mcc", name=MCC_RISK_HIGH, values=tuple(sorted(HIGH_RISK_MCCS))),
    DerivedInput("indicator", "country"),
)


def model_inputs(
    features: Mapping[str, float], amount: float, mcc: str, channel: str, country: str
) -> dict[str, float]:
    """The model's named inputs for one transaction: the per-card features plus ``MODEL_INPUTS``.

    Indicators are one-hot inputs named ``<column>=<value>``. Names absent from the result count as 0.0,
    so an unseen channel or country simply matches no coefficient.
    """
    fields: dict[str, float | str] = {"amount": amount, "mcc": mcc, "channel": channel, "country": country}
    inputs = dict(features)
    for derived in MODEL_INPUTS:
        value = fields[derived.field]
        if derived.kind == "log1p":
            # Clamped at 0 so a malformed negative amount cannot make log1p raise.
            assert isinstance(value, float | int)
            inputs[derived.name] = math.log1p(value) if value > 0.0 else 0.0
        elif derived.kind == "one_hot":
            for option in derived.values:
                inputs[f"{derived.field}={option}"] = 1.0 if value == option else 0.0
        elif derived.kind == "in_set":
            inputs[derived.name] = 1.0 if value in derived.values else 0.0
        elif derived.kind == "indicator":
            inputs[f"{derived.field}={value}"] = 1.0
        else:
            raise ValueError(f"unknown derived input kind {derived.kind!r}")
    return inputs


def sigmoid(z: float) -> float:
    """The logistic function without overflow: ``exp`` only ever sees a non-positive argument."""
    if z >= 0.0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


@dataclass(frozen=True, kw_only=True)
class LogisticRegressionParameters:
    """``z = intercept + sum(coefficients[i] * (x[i] - means[i]) / stds[i])``, score = sigmoid(z).

    Means and stds are the training standardisation, one per feature name. A std of 0 marks a feature
    that was constant in training; like Spark's ``StandardScaler`` it then contributes nothing.
    """

    means: tuple[float, ...]
    stds: tuple[float, ...]
    coefficients: tuple[float, ...]
    intercept: float


# Add a tree ensemble as ``LogisticRegressionParameters | TreeEnsembleParameters`` with its own kind.
ModelParameters = LogisticRegressionParameters


@dataclass(frozen=True, kw_only=True)
class ModelArtifact:
    """Everything needed to score, audit and reproduce one trained model. Validated on construction."""

    format_version: int = FORMAT_VERSION
    model_version: str  # e.g. "lr-20261124T101500Z-ab12cd"; also its directory name in the registry
    kind: str  # which parameters follow and how they score: "logistic_regression"
    feature_names: tuple[str, ...]  # ordered model inputs (see ``model_inputs``)
    feature_spec_version: str  # the per-card feature definition it was trained on
    parameters: ModelParameters
    threshold: float  # the model alone raises an alert at or above this score
    metrics: dict[str, float] = field(default_factory=dict)  # e.g. {"auc_pr": 0.81} on the holdout
    trained_on: dict[str, str] = field(default_factory=dict)  # e.g. {"table": ..., "snapshot_id": ...}
    code_version: str  # the trainer's source revision
    created_at: str  # ISO 8601

    def __post_init__(self) -> None:
        prefix = f"model {self.model_version!r}"
        if self.format_version != FORMAT_VERSION:
            raise ModelError(
                f"{prefix}: format_version {self.format_version} is not supported; this code reads {FORMAT_VERSION}"
            )
        if not _MODEL_VERSION_PATTERN.fullmatch(self.model_version):
            raise ModelError(f"{prefix}: model_version must be letters, digits, '.', '_' or '-' (at most 128)")
        if not self.feature_names:
            raise ModelError(f"{prefix}: feature_names is empty")
        if len(set(self.feature_names)) != len(self.feature_names):
            raise ModelError(f"{prefix}: feature_names has duplicates")
        if not self.feature_spec_version:
            raise ModelError(f"{prefix}: feature_spec_version is empty")
        if not (math.isfinite(self.threshold) and 0.0 <= self.threshold <= 1.0):
            raise ModelError(f"{prefix}: threshold {self.threshold} is not between 0 and 1")
        for name, value in self.metrics.items():
            if not math.isfinite(value):
                raise ModelError(f"{prefix}: metric {name!r} is {value}")
        try:
            datetime.fromisoformat(self.created_at)
        except ValueError:
            raise ModelError(f"{prefix}: created_at {self.created_at!r} is not an ISO 8601 timestamp") from None
        validate = _PARAMETER_VALIDATORS.get(self.kind)
        if validate is None:
            raise ModelError(f"{prefix}: kind {self.kind!r} is not supported; known: {sorted(_PARAMETER_VALIDATORS)}")
        validate(self, prefix)

    @cached_property
    def compiled(self) -> CompiledModel:
        """The scoring form, built once per artifact (cached on the instance)."""
        return compile_model(self)

    def to_json(self) -> str:
        """Stable text: sorted keys and exact float reprs, so equal artifacts give equal bytes."""
        document = {
            "format_version": self.format_version,
            "model_version": self.model_version,
            "kind": self.kind,
            "feature_names": list(self.feature_names),
            "feature_spec_version": self.feature_spec_version,
            "parameters": _PARAMETER_ENCODERS[self.kind](self.parameters),
            "threshold": self.threshold,
            "metrics": dict(self.metrics),
            "trained_on": dict(self.trained_on),
            "code_version": self.code_version,
            "created_at": self.created_at,
        }
        return json.dumps(document, sort_keys=True, indent=2, allow_nan=False) + "\n"

    @classmethod
    def from_json(cls, text: str) -> ModelArtifact:
        """Parse and validate; every problem is a one-line ``ModelError``."""
        try:
            document = json.loads(text, parse_constant=_reject_constant)
        except json.JSONDecodeError as error:
            raise ModelError(f"model artifact is not valid JSON: {error}") from None
        if not isinstance(document, dict):
            raise ModelError("model artifact must be a JSON object")
        known = {artifact_field.name for artifact_field in fields(cls)}
        # The format version decides the shape, so it is checked before anything else.
        if "format_version" not in document:
            raise ModelError("model artifact is missing field 'format_version'")
        format_version = _field(document, "format_version", int)
        if format_version != FORMAT_VERSION:
            raise ModelError(
                f"model artifact format_version {format_version} is not supported; this code reads {FORMAT_VERSION}"
            )
        for name in sorted(known):
            if name not in document:
                raise ModelError(f"model artifact is missing field {name!r}")
        unknown = sorted(set(document) - known)
        if unknown:
            raise ModelError(f"model artifact has unknown fields {unknown} for format_version {FORMAT_VERSION}")
        kind = _field(document, "kind", str)
        parse_parameters = _PARAMETER_PARSERS.get(kind)
        if parse_parameters is None:
            raise ModelError(f"model artifact kind {kind!r} is not supported; known: {sorted(_PARAMETER_PARSERS)}")
        raw_parameters = document["parameters"]
        if not isinstance(raw_parameters, dict):
            raise ModelError("model artifact field 'parameters' must be an object")
        return cls(
            format_version=format_version,
            model_version=_field(document, "model_version", str),
            kind=kind,
            feature_names=tuple(_str_list(document, "feature_names")),
            feature_spec_version=_field(document, "feature_spec_version", str),
            parameters=parse_parameters(raw_parameters),
            threshold=_number(document, "threshold"),
            metrics=_number_map(document, "metrics"),
            trained_on=_str_map(document, "trained_on"),
            code_version=_field(document, "code_version", str),
            created_at=_field(document, "created_at", str),
        )


@dataclass(frozen=True, slots=True)
class CompiledModel:
    """A model folded into what the per-transaction hot path needs; ``margin`` gives the log-odds."""

    model_version: str
    kind: str
    feature_spec_version: str
    threshold: float
    margin: Callable[[Mapping[str, float]], float]

    def score(self, inputs: Mapping[str, float]) -> float:
        return sigmoid(self.margin(inputs))


def compile_model(artifact: ModelArtifact) -> CompiledModel:
    """Build the scoring form, dispatching on ``artifact.kind`` once instead of per transaction."""
    return CompiledModel(
        model_version=artifact.model_version,
        kind=artifact.kind,
        feature_spec_version=artifact.feature_spec_version,
        threshold=artifact.threshold,
        margin=_MARGIN_COMPILERS[artifact.kind](artifact),
    )


def score(model: ModelArtifact | CompiledModel, inputs: Mapping[str, float]) -> float:
    """Fraud probability in [0, 1] for model inputs (see ``model_inputs``); missing inputs count as 0.0."""
    compiled = model if isinstance(model, CompiledModel) else model.compiled
    return sigmoid(compiled.margin(inputs))


def score_features(
    model: ModelArtifact | CompiledModel,
    features: Mapping[str, float],
    amount: float,
    mcc: str,
    channel: str,
    country: str,
) -> float:
    """Fraud probability straight from the per-card features and the transaction's own fields."""
    return score(model, model_inputs(features, amount, mcc, channel, country))


def check_compatible(model: ModelArtifact | CompiledModel, expected_feature_spec_version: str) -> None:
    """Refuse a model trained on other features than the job computes: it would score garbage silently."""
    if model.feature_spec_version != expected_feature_spec_version:
        raise ModelError(
            f"model {model.model_version} was trained on features {model.feature_spec_version!r} but this job "
            f"computes {expected_feature_spec_version!r}; retrain it or promote a compatible model"
        )


# --- logistic regression ------------------------------------------------------------------------------


def _validate_logistic_regression(artifact: ModelArtifact, prefix: str) -> None:
    parameters = artifact.parameters
    if not isinstance(parameters, LogisticRegressionParameters):
        raise ModelError(f"{prefix}: kind {artifact.kind} needs LogisticRegressionParameters")
    expected = len(artifact.feature_names)
    for name in ("means", "stds", "coefficients"):
        values: tuple[float, ...] = getattr(parameters, name)
        if len(values) != expected:
            raise ModelError(f"{prefix}: {len(values)} {name} for {expected} feature_names")
        if not all(math.isfinite(value) for value in values):
            raise ModelError(f"{prefix}: {name} contains NaN or infinity")
    if not math.isfinite(parameters.intercept):
        raise ModelError(f"{prefix}: intercept is {parameters.intercept}")
    if any(std < 0.0 for std in parameters.stds):
        raise ModelError(f"{prefix}: stds must not be negative")


def _compile_logistic_regression(artifact: ModelArtifact) -> Callable[[Mapping[str, float]], float]:
    parameters = artifact.parameters
    # Fold the standardisation into the weights: z = bias + sum(w_i * x_i), one multiply-add per input.
    bias = parameters.intercept
    weighted: list[tuple[str, float]] = []
    for name, mean, std, coefficient in zip(
        artifact.feature_names, parameters.means, parameters.stds, parameters.coefficients, strict=True
    ):
        # Constant in training (std 0; validated >= 0) or dropped by L1 (exactly 0): contributes nothing,
        # so skip its lookup on the hot path.
        if std <= 0.0 or not coefficient:
            continue
        weight = coefficient / std
        weighted.append((name, weight))
        bias -= weight * mean
    weights = tuple(weighted)

    def margin(inputs: Mapping[str, float]) -> float:
        z = bias
        get = inputs.get
        for name, weight in weights:
            z += weight * get(name, 0.0)
        return z

    return margin


def _encode_logistic_regression(parameters: ModelParameters) -> dict[str, Any]:
    return {
        "means": list(parameters.means),
        "stds": list(parameters.stds),
        "coefficients": list(parameters.coefficients),
        "intercept": parameters.intercept,
    }


def _parse_logistic_regression(raw: dict[str, Any]) -> ModelParameters:
    for name in ("means", "stds", "coefficients", "intercept"):
        if name not in raw:
            raise ModelError(f"model artifact parameters are missing {name!r}")
    return LogisticRegressionParameters(
        means=tuple(_number_list(raw, "means")),
        stds=tuple(_number_list(raw, "stds")),
        coefficients=tuple(_number_list(raw, "coefficients")),
        intercept=_number(raw, "intercept"),
    )


# One entry per kind: adding "gbt" means one function in each table, nothing on the scoring path.
_PARAMETER_VALIDATORS: dict[str, Callable[[ModelArtifact, str], None]] = {
    KIND_LOGISTIC_REGRESSION: _validate_logistic_regression
}
_MARGIN_COMPILERS: dict[str, Callable[[ModelArtifact], Callable[[Mapping[str, float]], float]]] = {
    KIND_LOGISTIC_REGRESSION: _compile_logistic_regression
}
_PARAMETER_ENCODERS: dict[str, Callable[[ModelParameters], dict[str, Any]]] = {
    KIND_LOGISTIC_REGRESSION: _encode_logistic_regression
}
_PARAMETER_PARSERS: dict[str, Callable[[dict[str, Any]], ModelParameters]] = {
    KIND_LOGISTIC_REGRESSION: _parse_logistic_regression
}


# --- JSON field checks ------------------------------------------------------------------------------------


def _reject_constant(name: str) -> float:
    raise ModelError(f"model artifact contains {name}; every number must be finite")


def _field(document: dict[str, Any], name: str, kind: type[_T]) -> _T:
    value = document.get(name)
    # bool is an int in Python but never a valid count or number here.
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ModelError(f"model artifact field {name!r} must be {kind.__name__}, not {type(value).__name__}")
    return value


def _number(document: dict[str, Any], name: str) -> float:
    value = document.get(name)
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ModelError(f"model artifact field {name!r} must be a number, not {type(value).__name__}")
    return float(value)


def _number_list(document: dict[str, Any], name: str) -> list[float]:
    values = _field(document, name, list)
    if not all(isinstance(value, int | float) and not isinstance(value, bool) for value in values):
        raise ModelError(f"model artifact field {name!r} must be a list of numbers")
    return [float(value) for value in values]


def _number_map(document: dict[str, Any], name: str) -> dict[str, float]:
    values = _field(document, name, dict)
    return {key: _number(values, key) for key in values}


def _str_list(document: dict[str, Any], name: str) -> list[str]:
    values = _field(document, name, list)
    if not all(isinstance(value, str) for value in values):
        raise ModelError(f"model artifact field {name!r} must be a list of strings")
    return list(values)


def _str_map(document: dict[str, Any], name: str) -> dict[str, str]:
    values = _field(document, name, dict)
    if not all(isinstance(value, str) for value in values.values()):
        raise ModelError(f"model artifact field {name!r} must map names to strings")
    return dict(values)


# --- registry ---------------------------------------------------------------------------------------------


def registry_root(cfg: PlatformConfig, environ: Mapping[str, str] | None = None) -> Path:
    """``$HDP_MODEL_REGISTRY`` when set (shared storage on a cluster), else ``<HDP_HOME>/models``."""
    source = os.environ if environ is None else environ
    override = source.get(REGISTRY_ENV_VAR, "")
    return Path(override).expanduser().resolve() if override else cfg.home / "models"


def _write_atomically(path: Path, text: str, *, exclusive: bool = False) -> bool:
    """Write ``text`` so readers see the old file or the whole new one, never a part.

    With ``exclusive`` an existing file is left alone and False is returned (a hard link is created
    only if the name is free, atomically, so two writers cannot both win).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if exclusive:
            try:
                os.link(temporary, path)
            except FileExistsError:
                return False
        else:
            os.replace(temporary, path)
        return True
    finally:
        if os.path.lexists(temporary):
            os.unlink(temporary)


def _check_version_name(model_version: str) -> None:
    if not _MODEL_VERSION_PATTERN.fullmatch(model_version):
        raise ModelError(f"{model_version!r} is not a model version (letters, digits, '.', '_' or '-')")


class ModelRegistry:
    """Models as files: ``<root>/<model_version>/model.json`` (immutable) and ``<root>/champion.json``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def champion_path(self) -> Path:
        return self.root / CHAMPION_FILE

    def model_path(self, model_version: str) -> Path:
        _check_version_name(model_version)
        return self.root / model_version / MODEL_FILE

    def register(self, artifact: ModelArtifact) -> Path:
        """Store the artifact; registering the identical artifact again is a no-op, a different one fails."""
        path = self.model_path(artifact.model_version)
        text = artifact.to_json()
        if not _write_atomically(path, text, exclusive=True) and path.read_text(encoding="utf-8") != text:
            raise ModelError(
                f"model {artifact.model_version} is already registered at {path} with other content; "
                "registered models are immutable, use a new model_version"
            )
        return path

    def get(self, model_version: str) -> ModelArtifact:
        path = self.model_path(model_version)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ModelError(f"model {model_version} is not registered in {self.root}") from None
        try:
            artifact = ModelArtifact.from_json(text)
        except ModelError as error:
            raise ModelError(f"{path}: {error}") from None
        if artifact.model_version != model_version:
            raise ModelError(f"{path} holds model {artifact.model_version}, not {model_version}")
        return artifact

    def list_versions(self) -> list[str]:
        """Registered versions, sorted by name (with one kind prefix, that is oldest first)."""
        if not self.root.is_dir():
            return []
        return sorted(entry.name for entry in self.root.iterdir() if (entry / MODEL_FILE).is_file())

    def promote(self, model_version: str, promoted_at: datetime | None = None) -> None:
        """Make a registered model the champion; running jobs pick it up on their next reload check."""
        self.get(model_version)  # refuse to point at a missing or unreadable model
        moment = promoted_at or datetime.now(UTC)
        pointer = {"model_version": model_version, "promoted_at": moment.isoformat(timespec="seconds")}
        _write_atomically(self.champion_path, json.dumps(pointer, sort_keys=True) + "\n")

    def champion_version(self) -> str | None:
        """The promoted version, None before the first promotion."""
        try:
            text = self.champion_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        try:
            pointer = json.loads(text)
        except json.JSONDecodeError as error:
            raise ModelError(f"{self.champion_path} is not valid JSON: {error}") from None
        version = pointer.get("model_version") if isinstance(pointer, dict) else None
        if not isinstance(version, str):
            raise ModelError(f"{self.champion_path} has no model_version string")
        return version

    def champion(self) -> ModelArtifact | None:
        version = self.champion_version()
        return None if version is None else self.get(version)


# --- hot reload -------------------------------------------------------------------------------------------


class HotReloadingModel:
    """The registry's champion for a long-running scorer, re-checked at most every ``check_interval_s``.

    A check is one ``stat`` of champion.json; only a changed file is parsed. Nothing here raises: a
    missing, half-written or invalid pointer or model keeps the previous model and sets ``last_error``,
    because a bad promotion must not stop fraud scoring.
    """

    def __init__(
        self,
        registry: ModelRegistry,
        check_interval_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        expected_feature_spec_version: str | None = None,
    ) -> None:
        self.registry = registry
        self.check_interval_s = check_interval_s
        self.expected_feature_spec_version = expected_feature_spec_version
        self.last_error: str | None = None
        self._clock = clock
        self._model: CompiledModel | None = None
        self._loaded_signature: tuple[int, int, int] | None = None
        self._next_check = clock() + check_interval_s
        self._reload()

    @property
    def model_version(self) -> str:
        return RULES_ONLY_VERSION if self._model is None else self._model.model_version

    def current(self) -> CompiledModel | None:
        now = self._clock()
        if now >= self._next_check:
            self._next_check = now + self.check_interval_s
            self._reload()
        return self._model

    def _reload(self) -> None:
        try:
            status = self.registry.champion_path.stat()
        except FileNotFoundError:
            if self._model is not None:
                self.last_error = f"{self.registry.champion_path} disappeared; keeping {self._model.model_version}"
            return
        except OSError as error:
            self.last_error = f"cannot stat {self.registry.champion_path}: {error}"
            return
        # The inode changes on every atomic replace, mtime and size catch in-place edits.
        signature = (status.st_ino, status.st_mtime_ns, status.st_size)
        if signature == self._loaded_signature:
            return
        try:
            self._model = self._load(self.registry.champion_version())
        except Exception as error:  # any bad file: keep scoring with what we have
            self.last_error = f"keeping {self.model_version}: {error}".replace("\n", " ")
            return  # the signature stays old, so the next check retries
        self._loaded_signature = signature
        self.last_error = None

    def _load(self, version: str | None) -> CompiledModel | None:
        if version is None:
            return self._model
        if self._model is not None and version == self._model.model_version:
            return self._model  # re-promoted: the model file is immutable, no need to parse it again
        artifact = self.registry.get(version)
        if self.expected_feature_spec_version is not None:
            check_compatible(artifact, self.expected_feature_spec_version)
        return artifact.compiled
