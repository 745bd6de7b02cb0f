"""Turning the algorithm catalog into form fields, and form input into params or a grid."""

from __future__ import annotations

from apps.ml.catalog import get_algorithm


def param_fields(algorithm: str, values: dict | None = None) -> list[dict]:
    """One field per tunable hyperparameter, with scikit-learn's default as placeholder."""
    entry = get_algorithm(algorithm).describe()
    values = values or {}
    fields = []
    for p in entry["params"]:
        default = p["default"]
        fields.append(
            {
                "name": p["name"],
                "type": p["type"],
                "default": "none" if default is None else str(default).lower() if isinstance(default, bool) else default,
                "choices": p.get("choices") or (["true", "false"] if p["type"] == "bool" else None),
                "nullable": p.get("nullable", False),
                "value": values.get(p["name"], ""),
            }
        )
    return fields


def params_and_grid(algorithm: str, data) -> tuple[dict, dict | None]:
    """Read ``param_<name>`` inputs. Several comma-separated values make a search grid."""
    entry = get_algorithm(algorithm).describe()
    params: dict = {}
    multi = False
    for p in entry["params"]:
        raw = (data.get(f"param_{p['name']}") or "").strip()
        if raw == "":
            continue
        if "," in raw:
            params[p["name"]] = [v.strip() for v in raw.split(",") if v.strip()]
            multi = True
        else:
            params[p["name"]] = raw
    if not multi:
        return params, None
    return {}, {name: value if isinstance(value, list) else [value] for name, value in params.items()}
