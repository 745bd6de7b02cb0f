"""The request contract of the prediction API: what an instance must look like.

``instances`` is the parsed JSON body part, a non-empty list (at most
``max_instances``) of objects mapping *every* feature of the signature — no more,
no fewer — to a value:

* numeric features take a JSON number (int or float). Strings are refused,
  even numeric-looking ones such as ``"3.5"`` (a client that quotes numbers is
  almost always mis-serialising something, and silently parsing would make
  ``"1,5"`` vs ``"1.5"`` a locale bug); booleans, arrays and objects are
  refused. ``NaN``/``±Infinity`` (not standard JSON, but Python's parser
  accepts them) count as null: the pipeline imputes them like a missing value.
* categorical and boolean features take a string, a number or a boolean; the
  value is compared with the training categories as text, exactly as the
  training pipeline does (``1``, ``1.0`` and ``"1"`` are the same category,
  ``true`` is ``"True"``). A category never seen in training is *accepted*:
  the one-hot encoder ignores it (all its indicator columns are 0). Arrays,
  objects and ``±Infinity`` are refused.
* null policy: the pipeline would impute a null, but a null silently replaced
  by the training median / most frequent value is usually a client bug, so a
  null (or NaN) is accepted only for a feature whose signature entry says
  ``"nullable": true`` — meant for features that had missing values in
  training. Signatures without that key refuse nulls, with a message saying so.
* a feature must be present even when nullable (send an explicit ``null``).

Problems are collected into ``InputError.errors``, each ``{"instance": index or
None, "field": name or None, "message": ...}``: the first ``MAX_COLLECTED_ERRORS`` of
them, while ``InputError.total`` counts them all. An instance with more than
``MAX_EXTRA_KEYS`` keys beyond the signature's features is one problem, found without
looking at its keys, so the cost of a refusal is bounded by ``max_instances`` × features
whatever the body holds (one instance of 440,000 unknown keys used to cost one error
dict, and ~1.5 KB, per key).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

from apps.ml.errors import MLError

NUMERIC_ROLES = frozenset({"numeric"})
CATEGORICAL_ROLES = frozenset({"categorical", "boolean"})
MAX_EXACT_INT = 2**53  # beyond this pandas may turn an int into a (different) float label
_MAX_NAMES_IN_MESSAGE = 20
MAX_COLLECTED_ERRORS = 100
MAX_EXTRA_KEYS = 20  # unknown keys beyond this make the whole instance one problem


class InputError(MLError):
    """A prediction request does not match the model's signature.

    ``errors`` lists the first problems as ``{"instance": int | None, "field": str |
    None, "message": str}`` (``instance`` is None for problems with the request
    as a whole, ``field`` None for problems with a whole instance); ``total``
    counts every problem found.
    """

    code = "bad_input"

    def __init__(self, errors: list[dict[str, Any]], total: int | None = None):
        self.errors = list(errors)
        self.total = len(self.errors) if total is None else total
        first = self.errors[0]["message"] if self.errors else "Invalid instances."
        more = self.total - 1
        message = first if more <= 0 else f"{first} (and {more} more problem{'s' if more > 1 else ''})"
        field = self.errors[0]["field"] if len(self.errors) == 1 else None
        super().__init__(message, field=field)


class FeatureSpec:
    """Signature entry reduced to what validation needs."""

    __slots__ = ("name", "numeric", "nullable")

    def __init__(self, name: str, numeric: bool, nullable: bool):
        self.name = name
        self.numeric = numeric
        self.nullable = nullable


class Signature:
    """A signature list prepared once: feature specs, the name set and the message listing names."""

    __slots__ = ("features", "names", "name_set", "expected", "checks")

    def __init__(self, signature: Sequence[Mapping[str, Any]]):
        if not isinstance(signature, Sequence) or isinstance(signature, str | bytes) or not signature:
            raise MLError("The model has no usable signature (a list of features).", field="signature")
        features = []
        for item in signature:
            if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
                raise MLError("Each signature entry must have a 'name'.", field="signature")
            role = item.get("role")
            if role not in NUMERIC_ROLES and role not in CATEGORICAL_ROLES:
                raise MLError(
                    f"Signature feature {item['name']!r} has unknown role {role!r}.", field="signature"
                )
            features.append(FeatureSpec(item["name"], role in NUMERIC_ROLES, item.get("nullable") is True))
        self.features = tuple(features)
        self.names = tuple(f.name for f in features)
        if len(set(self.names)) != len(self.names):
            raise MLError("The signature lists a feature twice.", field="signature")
        self.name_set = frozenset(self.names)
        self.checks = tuple((f.name, f.numeric) for f in features)
        shown = ", ".join(self.names[:_MAX_NAMES_IN_MESSAGE])
        if len(self.names) > _MAX_NAMES_IN_MESSAGE:
            shown += f", … ({len(self.names)} in all)"
        self.expected = shown


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "an array"
    return f"a {type(value).__name__}"


def _numeric_problem(spec: FeatureSpec, value: Any) -> str | None:
    kind = type(value)
    if kind is float:
        if value - value == 0.0 or spec.nullable:  # finite, or NaN/inf where null is allowed
            return None
        return (
            f"'{spec.name}' is {value!r}, which counts as a missing value, and this feature "
            "does not allow missing values."
        )
    if kind is int:
        if -MAX_EXACT_INT <= value <= MAX_EXACT_INT:
            return None
        try:
            float(value)
        except OverflowError:
            return f"'{spec.name}' is out of range for a floating-point number."
        return None
    if value is None:
        return None if spec.nullable else _null_message(spec.name)
    if isinstance(value, bool):
        return f"'{spec.name}' must be a number, got a boolean ({str(value).lower()})."
    if isinstance(value, str):
        return f"'{spec.name}' must be a JSON number, got the string {value[:40]!r} (send numbers unquoted)."
    if isinstance(value, int | float):  # int/float subclasses other than bool
        return _numeric_problem(spec, float(value))
    return f"'{spec.name}' must be a number, got {json_type(value)}."


def _categorical_problem(spec: FeatureSpec, value: Any) -> str | None:
    kind = type(value)
    if kind is str:
        return None if "\x00" not in value else f"'{spec.name}' contains a NUL character (\\u0000), which is not allowed."
    if kind is bool or kind is int:
        return None
    if kind is float:
        if value - value == 0.0:
            return None
        if value != value:  # NaN: treated as missing, like the pipeline does
            return None if spec.nullable else _null_message(spec.name)
        return f"'{spec.name}' must be a string, number or boolean; {value!r} is not a valid category."
    if value is None:
        return None if spec.nullable else _null_message(spec.name)
    if isinstance(value, str | bool | int):
        return None
    return f"'{spec.name}' must be a string, number or boolean, got {json_type(value)}."


def value_problem(spec: FeatureSpec, value: Any) -> str | None:
    """Message for a bad value of one feature, or None when it is acceptable."""
    return _numeric_problem(spec, value) if spec.numeric else _categorical_problem(spec, value)


def _null_message(name: str) -> str:
    return f"'{name}' must not be null: the model's signature does not allow missing values for this feature."


def _request_error(message: str) -> InputError:
    return InputError([{"instance": None, "field": None, "message": message}])


def _is_plainly_valid(inst: Any, sig: Signature) -> bool:
    """The fast check for the common valid instance: exact keys, finite numbers, strings."""
    if type(inst) is not dict or inst.keys() != sig.name_set:
        return False
    for name, numeric in sig.checks:
        value = inst[name]
        kind = type(value)
        if numeric:
            if (kind is float and value - value == 0.0) or (kind is int and -MAX_EXACT_INT <= value <= MAX_EXACT_INT):
                continue
        elif kind is str and "\x00" not in value:
            continue
        return False
    return True


def _instance_problems(i: int, inst: Any, sig: Signature) -> list[dict[str, Any]]:
    if not isinstance(inst, dict):
        return [{
            "instance": i,
            "field": None,
            "message": f"Instance {i} must be an object mapping feature names to values, got {json_type(inst)}.",
        }]  # fmt: skip
    if len(inst) > len(sig.names) + MAX_EXTRA_KEYS:  # refused without looking at every key
        examples = [k for k in itertools.islice(inst, len(sig.names) + 3) if k not in sig.name_set][:3]
        return [{
            "instance": i,
            "field": None,
            "message": f"Instance {i} has {len(inst):,} keys (unknown ones such as "
            f"{', '.join(repr(str(k)[:40]) for k in examples)}); the model expects {len(sig.names)} features: "
            f"{sig.expected}.",
        }]  # fmt: skip
    errors = []
    if inst.keys() != sig.name_set:
        for key in inst:
            if key not in sig.name_set:
                errors.append({
                    "instance": i,
                    "field": str(key),
                    "message": f"Unknown feature {str(key)!r}; the model expects: {sig.expected}.",
                })  # fmt: skip
    for spec in sig.features:
        try:
            value = inst[spec.name]
        except KeyError:
            errors.append({"instance": i, "field": spec.name, "message": f"Missing feature '{spec.name}'."})
            continue
        problem = value_problem(spec, value)
        if problem is not None:
            errors.append({"instance": i, "field": spec.name, "message": problem})
    return errors


def validate(instances: Any, sig: Signature, max_instances: int) -> None:
    """Raise ``InputError`` unless ``instances`` meets the contract for ``sig``."""
    if not isinstance(instances, list):
        raise _request_error(f"'instances' must be a list of objects, got {json_type(instances)}.")
    if not instances:
        raise _request_error("'instances' is empty: send at least one instance.")
    if len(instances) > max_instances:
        raise _request_error(f"Too many instances: {len(instances)}; at most {max_instances} per request.")
    errors: list[dict[str, Any]] = []
    total = 0
    for i, inst in enumerate(instances):
        if not _is_plainly_valid(inst, sig):
            problems = _instance_problems(i, inst, sig)
            total += len(problems)
            errors.extend(problems[: MAX_COLLECTED_ERRORS - len(errors)])
    if total:
        raise InputError(errors, total)


def validate_instances(instances: Any, signature: Sequence[Mapping[str, Any]], *, max_instances: int) -> None:
    """Check a prediction request against a run's signature; raise ``InputError`` listing the problems.

    See the module docstring for the contract (types, nulls, unseen categories).
    ``CompiledPredictor.validate`` does the same with the signature prepared once.
    """
    validate(instances, Signature(signature), max_instances)
