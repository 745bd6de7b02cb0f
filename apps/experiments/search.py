"""MLflow's search syntax for runs (and the registry's lists): ``filter`` and ``order_by`` strings.

    metrics.rmse < 0.5 AND params.model = 'rf' AND tags.`mlflow.runName` LIKE 'base%'
    attributes.start_time DESC

A filter is clauses joined by AND: an identifier (``entity.key``; the key plain, or quoted with
backticks or double quotes), a comparator (= != > >= < <= LIKE ILIKE IN, NOT IN) and a value (a
quoted string, a number, or a parenthesised list). Anything else is a ``ValidationError``
naming the position, never a database error.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db.models import (
    Case,
    CharField,
    Exists,
    F,
    FloatField,
    Lookup,
    OuterRef,
    Q,
    TextField,
    Value,
    When,
)
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast

MAX_FILTER_LENGTH = 10_000
MAX_CLAUSES = 50
ENTITIES = {
    "metric": "metrics", "metrics": "metrics",
    "param": "params", "params": "params", "parameter": "params", "parameters": "params",
    "tag": "tags", "tags": "tags",
    "attribute": "attributes", "attributes": "attributes", "attr": "attributes", "run": "attributes",
    "dataset": "datasets", "datasets": "datasets",
}
STRING_OPS = {"=", "!=", "LIKE", "ILIKE", "IN", "NOT IN"}
NUMERIC_OPS = {"=", "!=", ">", ">=", "<", "<="}
_SYMBOL = re.compile(r"!=|<>|>=|<=|=|>|<")
_WORD = re.compile(r"[A-Za-z_][\w]*")
_PLAIN_KEY = re.compile(r"[\w.\-:/]+")
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


@dataclass(frozen=True)
class Clause:
    entity: str  # metrics, params, tags, attributes, datasets
    key: str
    op: str
    value: object  # str, float, or a tuple of str for IN


class _Scanner:
    def __init__(self, text: str):
        self.text, self.pos = text, 0

    def fail(self, what: str):
        raise ValidationError({"filter": f"Invalid filter {self.text[:200]!r}: {what} at position {self.pos}."})

    def skip(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def done(self) -> bool:
        self.skip()
        return self.pos >= len(self.text)

    def match(self, pattern: re.Pattern) -> str | None:
        self.skip()
        found = pattern.match(self.text, self.pos)
        if not found:
            return None
        self.pos = found.end()
        return found.group(0)

    def keyword(self, *words: str) -> str | None:
        self.skip()
        found = _WORD.match(self.text, self.pos)
        if found and found.group(0).upper() in words:
            self.pos = found.end()
            return found.group(0).upper()
        return None

    def quoted(self, quotes: str) -> str | None:
        self.skip()
        if self.pos >= len(self.text) or self.text[self.pos] not in quotes:
            return None
        quote, out, i = self.text[self.pos], [], self.pos + 1
        while i < len(self.text):
            char = self.text[i]
            if char == "\\" and i + 1 < len(self.text):
                out.append(self.text[i + 1])
                i += 2
                continue
            if char == quote:
                if quote == "'" and self.text[i + 1:i + 2] == "'":  # SQL's doubled quote
                    out.append("'")
                    i += 2
                    continue
                self.pos = i + 1
                return "".join(out)
            out.append(char)
            i += 1
        self.fail("an unterminated quote")

    def identifier(self, default_entity: str | None) -> tuple[str, str]:
        start = self.pos
        word = self.match(_WORD)
        if word is None:
            quoted = self.quoted('`"')
            if quoted is None or default_entity is None:
                self.fail("expected an identifier such as metrics.rmse or tags.`mlflow.runName`")
            return default_entity, quoted
        if self.pos < len(self.text) and self.text[self.pos] == ".":
            entity = ENTITIES.get(word.lower())
            if entity is None:
                self.pos = start
                self.fail(f"unknown entity {word!r} (use metrics, params, tags, attributes or datasets)")
            self.pos += 1
            if self.pos < len(self.text) and self.text[self.pos] in '`"':
                key = self.quoted('`"')
            else:
                key = _PLAIN_KEY.match(self.text, self.pos)
                if key is None:
                    self.fail("expected a key after the entity")
                self.pos = key.end()
                key = key.group(0)
            if not key:
                self.fail("an empty key")
            return entity, key
        if default_entity is None:
            return "attributes", word
        return default_entity, word

    def comparator(self) -> str:
        symbol = self.match(_SYMBOL)
        if symbol:
            return "!=" if symbol == "<>" else symbol
        word = self.keyword("LIKE", "ILIKE", "IN", "NOT")
        if word == "NOT":
            if self.keyword("IN") is None:
                self.fail("expected IN after NOT")
            return "NOT IN"
        if word is None:
            self.fail("expected a comparator (=, !=, <, <=, >, >=, LIKE, ILIKE, IN)")
        return word

    def value(self, op: str) -> object:
        if op in ("IN", "NOT IN"):
            self.skip()
            if self.text[self.pos:self.pos + 1] != "(":
                self.fail("expected a parenthesised list after IN")
            self.pos += 1
            items = []
            while True:
                item = self.quoted("'\"")
                if item is None:
                    self.fail("expected a quoted string in the IN list")
                items.append(item)
                self.skip()
                char = self.text[self.pos:self.pos + 1]
                self.pos += 1
                if char == ")":
                    return tuple(items)
                if char != ",":
                    self.fail("expected , or ) in the IN list")
        quoted = self.quoted("'\"")
        if quoted is not None:
            return quoted
        number = self.match(_NUMBER)
        if number is None:
            self.fail("expected a quoted string or a number")
        return float(number)


def parse_filter(text: str | None, *, default_entity: str | None = None) -> list[Clause]:
    """The clauses of a filter; ``default_entity`` is what a bare identifier means (registry filters)."""
    text = (text or "").strip()
    if len(text) > MAX_FILTER_LENGTH:
        raise ValidationError({"filter": f"The filter is longer than {MAX_FILTER_LENGTH} characters."})
    scanner = _Scanner(text)
    clauses: list[Clause] = []
    while not scanner.done():
        if clauses and scanner.keyword("AND") is None:
            scanner.fail("expected AND between clauses (OR is not supported)")
        entity, key = scanner.identifier(default_entity)
        op = scanner.comparator()
        value = scanner.value(op)
        if entity == "metrics" and (op not in NUMERIC_OPS or not isinstance(value, float)):
            scanner.fail(f"metric {key!r} compares with =, !=, <, <=, >, >= and a number")
        if entity in ("params", "tags") and (op not in STRING_OPS or isinstance(value, float)):
            scanner.fail(f"{entity} {key!r} compare with =, !=, LIKE, ILIKE or IN and a quoted string")
        clauses.append(Clause(entity, key, op, value))
        if len(clauses) > MAX_CLAUSES:
            scanner.fail(f"more than {MAX_CLAUSES} clauses")
    return clauses


def parse_order_by(items: list[str] | None, *, default_entity: str | None = None) -> list[tuple[str, str, bool]]:
    """``[(entity, key, ascending)]`` from strings such as ``metrics.rmse DESC``."""
    out = []
    for item in items or []:
        if not isinstance(item, str):
            raise ValidationError({"order_by": "order_by items must be strings."})
        scanner = _Scanner(item.strip())
        entity, key = scanner.identifier(default_entity)
        direction = scanner.keyword("ASC", "DESC") or "ASC"
        if not scanner.done():
            raise ValidationError({"order_by": f"Invalid order_by clause {item[:200]!r}."})
        out.append((entity, key, direction == "ASC"))
    if len(out) > 10:
        raise ValidationError({"order_by": "At most 10 order_by clauses."})
    return out


# --- compiling to the ORM ---------------------------------------------------------------------------------


class _Like(Lookup):
    lookup_name = "mlflow_like"
    case_insensitive = False

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        if self.case_insensitive:
            if connection.vendor == "postgresql":
                return f"{lhs} ILIKE {rhs}", [*lhs_params, *rhs_params]
            return f"UPPER({lhs}) LIKE UPPER({rhs})", [*lhs_params, *rhs_params]
        return f"{lhs} LIKE {rhs}", [*lhs_params, *rhs_params]


class _ILike(_Like):
    lookup_name = "mlflow_ilike"
    case_insensitive = True


for _field in (CharField, TextField):
    _field.register_lookup(_Like)
    _field.register_lookup(_ILike)


def string_q(name: str, op: str, value) -> Q:
    """A comparison of the (text) expression annotated as ``name`` with a filter value."""
    if isinstance(value, float):
        value = f"{value:g}"
    if op == "=":
        return Q(**{name: value})
    if op == "!=":
        return ~Q(**{name: value}) & Q(**{f"{name}__isnull": False})
    if op == "LIKE":
        return Q(**{f"{name}__mlflow_like": value})
    if op == "ILIKE":
        return Q(**{f"{name}__mlflow_ilike": value})
    if op == "IN":
        return Q(**{f"{name}__in": list(value)})
    if op == "NOT IN":
        return ~Q(**{f"{name}__in": list(value)}) & Q(**{f"{name}__isnull": False})
    raise ValidationError({"filter": f"{op} does not apply to strings."})


def number_q(name: str, op: str, value: float) -> Q:
    lookups = {"=": "exact", ">": "gt", ">=": "gte", "<": "lt", "<=": "lte"}
    if op == "!=":
        return ~Q(**{name: value}) & Q(**{f"{name}__isnull": False})
    return Q(**{f"{name}__{lookups[op]}": value})


RUN_STRING_ATTRIBUTES = {"run_id": "uuid", "run_name": "name", "user_id": "client_user", "status": "_status"}
RUN_NUMBER_ATTRIBUTES = {"start_time": "start_time", "end_time": "end_time", "created": "start_time"}


def run_status_expression():
    """A run's MLflow status: its own for MLflow runs, its job's translated for catalog runs."""
    return Case(
        When(~Q(mlflow_status=""), then=F("mlflow_status")),
        When(job__status="succeeded", then=Value("FINISHED")),
        When(job__status="failed", then=Value("FAILED")),
        When(job__status="cancelled", then=Value("KILLED")),
        When(job__status="running", then=Value("RUNNING")),
        default=Value("SCHEDULED"),
        output_field=CharField(),
    )


def _json_text(field: str, key: str):
    return KeyTextTransform(key, field)


def json_text(field: str, key: str):
    """The text of ``field[key]`` (a JSON object of tags or params), for string comparisons."""
    return Cast(KeyTextTransform(key, field), TextField())


def filter_runs(queryset, clauses: list[Clause]):
    """Apply parsed clauses to a Run queryset."""
    from .models import RunInput

    annotations, q = {"_status": run_status_expression()}, Q()
    for index, clause in enumerate(clauses):
        name = f"_f{index}"
        if clause.entity == "metrics":
            annotations[name] = Cast(_json_text("metrics", clause.key), FloatField())
            q &= number_q(name, clause.op, clause.value)
        elif clause.entity in ("params", "tags"):
            annotations[name] = Cast(_json_text(clause.entity, clause.key), TextField())
            q &= string_q(name, clause.op, clause.value)
        elif clause.entity == "datasets":
            if clause.key not in ("name", "digest", "context") or clause.op not in ("=", "IN"):
                raise ValidationError({"filter": "datasets filters on name, digest or context with = or IN."})
            values = list(clause.value) if clause.op == "IN" else [clause.value]
            annotations[name] = Exists(RunInput.objects.filter(run=OuterRef("pk"), **{f"{clause.key}__in": values}))
            q &= Q(**{name: True})
        elif clause.key in RUN_STRING_ATTRIBUTES:
            if isinstance(clause.value, float):
                raise ValidationError({"filter": f"attributes.{clause.key} compares with a quoted string."})
            q &= string_q(RUN_STRING_ATTRIBUTES[clause.key], clause.op, clause.value)
        elif clause.key in RUN_NUMBER_ATTRIBUTES:
            if not isinstance(clause.value, float) or clause.op not in NUMERIC_OPS:
                raise ValidationError({"filter": f"attributes.{clause.key} compares with a number."})
            q &= number_q(RUN_NUMBER_ATTRIBUTES[clause.key], clause.op, clause.value)
        else:
            raise ValidationError({"filter": f"Unknown run attribute {clause.key!r} (use run_id, run_name, "
                                             "status, user_id, start_time or end_time)."})
    return queryset.annotate(**annotations).filter(q)


def order_runs(queryset, order: list[tuple[str, str, bool]]):
    expressions, annotations = [], {}
    for index, (entity, key, ascending) in enumerate(order):
        name = f"_o{index}"
        if entity == "metrics":
            annotations[name] = Cast(_json_text("metrics", key), FloatField())
        elif entity in ("params", "tags"):
            annotations[name] = Cast(_json_text(entity, key), TextField())
        elif entity == "attributes" and key in RUN_STRING_ATTRIBUTES | RUN_NUMBER_ATTRIBUTES:
            annotations[name] = F(RUN_STRING_ATTRIBUTES.get(key) or RUN_NUMBER_ATTRIBUTES[key])
        else:
            raise ValidationError({"order_by": f"Cannot order runs by {entity}.{key}."})
        expressions.append(F(name).asc(nulls_last=True) if ascending else F(name).desc(nulls_last=True))
    expressions += [F("start_time").desc(nulls_last=True), F("uuid").asc()]
    return queryset.annotate(**annotations).order_by(*expressions)


def page_offset(token: str | None) -> int:
    if not token:
        return 0
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode() + b"==").decode())["offset"]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise ValidationError({"page_token": "Invalid page token; pass back the next_page_token you were given."}) from None
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0 or offset > 10**9:
        raise ValidationError({"page_token": "Invalid page token; pass back the next_page_token you were given."})
    return offset


def page_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode().rstrip("=")


def paginate(queryset, *, token: str | None, size: int) -> tuple[list, str]:
    """One page of ``queryset`` and the token of the next one ("" when this is the last)."""
    offset = page_offset(token)
    rows = list(queryset[offset:offset + size + 1])
    more = len(rows) > size
    return rows[:size], page_token(offset + size) if more else ""
