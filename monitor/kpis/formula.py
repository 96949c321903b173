"""KPI formulas: a tiny declarative language, parsed into a typed tree (no ``eval``, no SQL).

Grammar
-------
::

    formula := NAME "(" [ arg { "," arg } ] ")"
    arg     := NAME [ "." NAME ]          an event, ``event.value``, or a log column
             | NAME "=" number            a keyword (business value)
             | number | string
    NAME    := [A-Za-z_][A-Za-z0-9_-]*    string := '...' or "..."

Functions
---------
=========================================  ===============================================
``count(event)``                           events of that name per window
``sum(event.value)`` / ``mean(event.value)``  sum / mean of their values
``percentile(event.value, q)``             ``q`` in [0, 1] (``0.95``), linear interpolation
``rate(numerator, denominator)``           count(numerator) / count(denominator)
``mean(column)``                           mean of a numeric log column of ``model``
``positive_rate(prediction[, "class"])``   share of rows predicted positive (class)
``label_rate(label[, "class"])``           share of labelled rows whose label is positive
``business_value(tp=.., fp=.., tn=.., fn=..[, per_row=1])``  value of the classifier's
                                           decisions: realized from labels, estimated by
                                           CBPE for rows without labels yet
=========================================  ===============================================

A parse error names the position: ``formula: expected ')' at column 14``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from monitor.errors import InvalidInput

__all__ = [
    "FUNCTIONS",
    "BusinessValueFormula",
    "EventFormula",
    "Formula",
    "FormulaError",
    "LogFormula",
    "parse_formula",
]

FUNCTIONS: tuple[str, ...] = (
    "count",
    "sum",
    "mean",
    "percentile",
    "rate",
    "positive_rate",
    "label_rate",
    "business_value",
)
MAX_FORMULA_LEN = 500


class FormulaError(InvalidInput):
    """A formula that does not parse or names an unknown function; says where and why."""


@dataclass(frozen=True)
class EventFormula:
    """An aggregate over business events (``source = "events"``)."""

    func: Literal["count", "sum", "mean", "percentile", "rate"]
    event: str
    q: float | None = None
    denominator: str | None = None
    source: Literal["events"] = "events"


@dataclass(frozen=True)
class LogFormula:
    """An aggregate over the KPI's model's inference logs (``source = "logs"``).

    ``column`` is a log column (``prediction`` / ``label`` resolve to the model's prediction
    column and its label); ``positive`` is the class counted (1 for binary when omitted).
    """

    func: Literal["mean", "positive_rate", "label_rate"]
    column: str
    positive: str | None = None
    source: Literal["logs"] = "logs"


@dataclass(frozen=True)
class BusinessValueFormula:
    """Value of a classifier's decisions: ``tp·TP + fp·FP + tn·TN + fn·FN`` per window,
    divided by the row count when ``per_row``."""

    tp: float
    fp: float
    tn: float
    fn: float
    per_row: bool = False
    source: Literal["logs"] = "logs"


Formula = EventFormula | LogFormula | BusinessValueFormula

_TOKEN = re.compile(
    r"\s*(?:(?P<num>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_\-]*)"
    r"|(?P<str>'[^']*'|\"[^\"]*\")"
    r"|(?P<op>[(),.=]))"
)


@dataclass(frozen=True)
class _Tok:
    kind: str
    text: str
    pos: int


@dataclass(frozen=True)
class _Arg:
    kind: Literal["ref", "num", "str", "kw"]
    name: str = ""
    attr: str | None = None
    number: float = 0.0
    pos: int = 0


def _tokens(text: str) -> list[_Tok]:
    out: list[_Tok] = []
    i = 0
    while i < len(text):
        if text[i].isspace():
            i += 1
            continue
        m = _TOKEN.match(text, i)
        if m is None or m.end() == i:
            raise FormulaError(f"unexpected character {text[i]!r} at column {i + 1}")
        kind = m.lastgroup or "op"
        out.append(_Tok(kind, m.group(kind), m.start(kind) + 1))
        i = m.end()
    out.append(_Tok("end", "", len(text) + 1))
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.toks = _tokens(text)
        self.i = 0

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def take(self, kind: str, text: str | None = None) -> _Tok:
        tok = self.peek()
        if tok.kind != kind or (text is not None and tok.text != text):
            want = (
                repr(text)
                if text
                else {"name": "a name", "num": "a number", "end": "the end"}[kind]
            )
            got = repr(tok.text) if tok.kind != "end" else "the end"
            raise FormulaError(f"expected {want} at column {tok.pos}, got {got}")
        self.i += 1
        return tok

    def arg(self) -> _Arg:
        tok = self.peek()
        if tok.kind == "num":
            self.i += 1
            return _Arg("num", number=float(tok.text), pos=tok.pos)
        if tok.kind == "str":
            self.i += 1
            return _Arg("str", name=tok.text[1:-1], pos=tok.pos)
        name = self.take("name")
        if self.peek().text == ".":
            self.i += 1
            return _Arg("ref", name=name.text, attr=self.take("name").text, pos=name.pos)
        if self.peek().text == "=":
            self.i += 1
            num = self.take("num")
            return _Arg("kw", name=name.text, number=float(num.text), pos=name.pos)
        return _Arg("ref", name=name.text, pos=name.pos)

    def call(self) -> tuple[str, int, list[_Arg]]:
        func = self.take("name")
        self.take("op", "(")
        args: list[_Arg] = []
        if self.peek().text != ")":
            args.append(self.arg())
            while self.peek().text == ",":
                self.i += 1
                args.append(self.arg())
        self.take("op", ")")
        self.take("end")
        return func.text, func.pos, args


def _ref(func: str, arg: _Arg, *, attr: str | None = None, what: str = "an event name") -> str:
    if arg.kind == "str" and attr is None:
        return arg.name
    if arg.kind != "ref":
        raise FormulaError(f"{func}(): expected {what} at column {arg.pos}")
    if attr is None and arg.attr is not None:
        raise FormulaError(
            f"{func}(): expected {what} at column {arg.pos}, got {arg.name}.{arg.attr}"
        )
    if attr is not None and arg.attr != attr:
        raise FormulaError(
            f"{func}(): expected '<event>.{attr}' at column {arg.pos}, got {arg.name!r}"
            + (f".{arg.attr}" if arg.attr else "")
        )
    return arg.name


def _arity(func: str, args: list[_Arg], low: int, high: int) -> None:
    if not low <= len(args) <= high:
        want = str(low) if low == high else f"{low} to {high}"
        raise FormulaError(f"{func}() takes {want} argument(s), got {len(args)}")


def parse_formula(text: str) -> Formula:
    """Parse a KPI formula.

    Parameters
    ----------
    text
        E.g. ``"rate(conversion, session)"`` or ``"percentile(latency.value, 0.95)"``.

    Returns
    -------
    EventFormula | LogFormula | BusinessValueFormula

    Raises
    ------
    FormulaError
        With the column of the problem and what was expected.

    Examples
    --------
    >>> parse_formula("percentile(latency.value, 0.95)")
    EventFormula(func='percentile', event='latency', q=0.95, denominator=None, source='events')
    >>> parse_formula("positive_rate(prediction)").func
    'positive_rate'
    """
    if not isinstance(text, str) or not text.strip():
        raise FormulaError("empty formula: e.g. 'count(session)' or 'rate(conversion, session)'")
    if len(text) > MAX_FORMULA_LEN:
        raise FormulaError(f"formula is longer than {MAX_FORMULA_LEN} characters")
    func, pos, args = _Parser(text).call()
    if func not in FUNCTIONS:
        raise FormulaError(
            f"unknown function {func!r} at column {pos}; functions: {', '.join(FUNCTIONS)}"
        )
    if any(a.kind == "kw" for a in args) and func != "business_value":
        raise FormulaError(f"{func}() takes no keyword arguments")
    if func == "count":
        _arity(func, args, 1, 1)
        return EventFormula("count", _ref(func, args[0]))
    if func == "rate":
        _arity(func, args, 2, 2)
        num, den = _ref(func, args[0]), _ref(func, args[1])
        return EventFormula("rate", num, denominator=den)
    if func in ("sum", "percentile"):
        _arity(func, args, 1 if func == "sum" else 2, 1 if func == "sum" else 2)
        event = _ref(func, args[0], attr="value")
        if func == "sum":
            return EventFormula("sum", event)
        q = args[1]
        if q.kind != "num" or not 0.0 <= q.number <= 1.0:
            raise FormulaError(
                f"percentile(): q at column {q.pos} must be a number in [0, 1], e.g. 0.95"
            )
        return EventFormula("percentile", event, q=q.number)
    if func == "mean":
        _arity(func, args, 1, 1)
        a = args[0]
        if a.kind == "ref" and a.attr == "value":
            return EventFormula("mean", a.name)
        return LogFormula("mean", _ref(func, a, what="'<event>.value' or a log column"))
    if func in ("positive_rate", "label_rate"):
        _arity(func, args, 1, 2)
        column = _ref(func, args[0], what="a column name")
        if func == "label_rate" and column != "label":
            raise FormulaError(f"label_rate(): the first argument must be 'label', got {column!r}")
        positive = None
        if len(args) == 2:
            p = args[1]
            if p.kind == "num":
                positive = str(int(p.number)) if p.number.is_integer() else str(p.number)
            elif p.kind in ("str", "ref") and p.attr is None:
                positive = p.name
            else:
                raise FormulaError(f"{func}(): the class at column {p.pos} must be a value")
        return LogFormula(func, column, positive)  # type: ignore[arg-type]
    # business_value
    values: dict[str, float] = {}
    for a in args:
        if a.kind != "kw" or a.name not in ("tp", "fp", "tn", "fn", "per_row"):
            raise FormulaError(
                f"business_value(): expected tp=, fp=, tn=, fn= or per_row= at column {a.pos}"
            )
        if a.name in values:
            raise FormulaError(f"business_value(): {a.name} given twice")
        values[a.name] = a.number
    if not any(k in values for k in ("tp", "fp", "tn", "fn")):
        raise FormulaError("business_value(): give a value for at least one of tp, fp, tn, fn")
    return BusinessValueFormula(
        tp=values.get("tp", 0.0),
        fp=values.get("fp", 0.0),
        tn=values.get("tn", 0.0),
        fn=values.get("fn", 0.0),
        per_row=bool(values.get("per_row", 0.0)),
    )
