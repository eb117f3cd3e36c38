"""Materials (素材): the message templates a journey sends, rendered for one person in a sandbox.

A :class:`Material` holds one channel's templates (subject, body, provider-template parameters) in Chinese and/or
English. Templates are Jinja2 templates run in Jinja's ``ImmutableSandboxedEnvironment``
(https://jinja.palletsprojects.com/en/3.1.x/sandbox/): attribute access goes through
``is_safe_attribute``/``getattr``, calls through ``call``, and the operators named in ``intercepted_binops`` through
``call_binop``. The sandbox docs' security considerations say the sandbox alone is not a solution for perfect
security: a small template can still render a huge output or run long (Jinja bounds neither time nor memory), and
compile or render errors must be caught. So this module adds what a message template needs on top of it:

* **Nothing outside the scope.** A template reads ``person``, ``tags``, ``models``, ``benefit``, ``links`` and
  ``journey`` (:class:`RenderScope`) and calls ``range``; any other free name (``config``, ``self``, ``cycler``,
  ``lipsum``, ``namespace``) is refused when the material is made. There is no loader, and ``{% include %}``,
  ``{% import %}``, ``{% extends %}`` are refused, so a template cannot read a file. Attributes starting with
  ``_`` (``__class__``, ``__globals__``, ``self._TemplateReference__context``), ``mro``, frame and code internals,
  and ``str.format``/``format_map`` (the ``'{0.__class__}'.format(x)`` attack) are refused statically and again at
  run time; methods are allowed only from a short list per type (``str.upper``, ``dict.get``…). Scope values are
  copied into plain data (dict, list, str, numbers, dates) before a template sees them.
* **Bounded work.** ``range()`` is capped at :data:`MAX_RANGE` items; every loop iteration, call, attribute read and
  intercepted operator ticks a step counter (:data:`MAX_STEPS`) and checks a budget of the thread's CPU time
  (:data:`RENDER_BUDGET_MS`); macro calls nest at most :data:`MAX_MACRO_DEPTH` deep.
* **Bounded memory.** ``*``, ``**``, ``+`` and ``%`` are intercepted so ``'x' * 10**9``, ``10 ** (10**10)`` and
  ``'%999999999d' % 1`` are refused before they run; ``~`` concatenation, every filter's input, every printed value
  and the bytes a render produces (captured blocks included) are measured against :data:`MAX_VALUE` /
  :data:`MAX_OUTPUT`. The checks are compiled into the template by rewriting Jinja's parsed tree (loops iterate
  through a guard, ``~`` goes through a measured join, every ``{{ }}`` is counted), so no path around them is
  left in the generated code.

A template that breaks a rule when the material is made raises :class:`ValidationError` with code
``template_invalid`` (or :class:`TemplateUnsafeError` for a forbidden attribute), naming the template
(``field="body.en"``) and Jinja's line. One that hits a limit while rendering raises :class:`TemplateUnsafeError`
(code ``template_unsafe``). An undefined value (``person.nickname`` for someone without one) renders empty and is
listed in :attr:`RenderResult.missing`, so a send goes out and an operator previewing sees what was absent.

HTML e-mail helpers (:func:`track_links`, :func:`add_pixel`) locate tags with :mod:`html.parser` and splice only the
tags they change, so the rest of the document is returned byte for byte.
"""

from __future__ import annotations

import contextvars
import functools
import html as html_lib
import re
import time
from collections.abc import Callable, ItemsView, Iterable, Iterator, KeysView, Mapping, Sized, ValuesView
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from html.parser import HTMLParser
from typing import Any, Literal, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jinja2
from jinja2 import nodes
from jinja2.filters import FILTERS
from jinja2.meta import find_undeclared_variables
from jinja2.runtime import LoopContext, Macro, markup_join, str_join
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError
from jinja2.visitor import NodeTransformer
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from userloop.core.errors import UserloopError, ValidationError

__all__ = [
    "LOCALES",
    "MAX_MACRO_DEPTH",
    "MAX_OUTPUT",
    "MAX_RANGE",
    "MAX_STEPS",
    "MAX_TEMPLATE_BYTES",
    "MAX_VALUE",
    "RENDER_BUDGET_MS",
    "SCOPE_NAMES",
    "Locale",
    "Material",
    "RenderResult",
    "RenderScope",
    "TemplateUnsafeError",
    "add_pixel",
    "choose_locale",
    "preview",
    "render",
    "track_links",
]

Locale = Literal["zh-CN", "en"]
LOCALES: tuple[Locale, ...] = ("zh-CN", "en")
ChannelKind = Literal["email", "sms", "push", "webhook", "inbox"]

#: Largest template source, in UTF-8 bytes.
MAX_TEMPLATE_BYTES = 64 * 1024
#: Largest rendered text of one template, in characters.
MAX_OUTPUT = 256 * 1024
#: Largest value a template may build (a string's length, a list's printed size, roughly).
MAX_VALUE = 1024 * 1024
#: Most characters one render may produce in all, blocks captured by ``{% set %}`` and macro bodies included.
MAX_PRODUCED = 4 * MAX_OUTPUT
#: Most items ``range()`` may give.
MAX_RANGE = 10_000
#: Most loop iterations, calls, attribute reads and operators in one render.
MAX_STEPS = 200_000
#: Most items a list built by ``*`` may hold, and a filter may collect from an iterator or sort, map or group.
MAX_ITEMS = 20_000
#: Most syntax nodes in one template (compiling is slow past a few thousand; real messages have hundreds).
MAX_NODES = 5_000
#: Deepest nesting of macro calls (a recursive macro stops here).
MAX_MACRO_DEPTH = 32
#: Largest integer a template may compute, in bits.
MAX_INT_BITS = 4096
#: Widest width or precision in a ``%`` format.
MAX_FORMAT_WIDTH = 1000
#: Most digits ``round`` may round to (``round(5, -10**9)`` would compute ``10**10**9``).
MAX_ROUND_DIGITS = 100
#: CPU-time budget of one render (subject, body and parameters together), in milliseconds: the render's own
#: thread's CPU time, so a busy machine (other processes, other threads) does not fail a template that is fine.
RENDER_BUDGET_MS = 200.0

#: The names a template can read.
SCOPE_NAMES = frozenset({"person", "tags", "models", "benefit", "links", "journey"})
_GLOBAL_NAMES = frozenset({"range"})

#: Attribute names refused statically even without a leading underscore: Python internals reachable from
#: functions, generators, frames and tracebacks, and the str.format family (format-string attribute walks).
_DENIED_ATTRS = frozenset(
    {
        "format",
        "format_map",
        "mro",
        "func_globals",
        "func_code",
        "func_closure",
        "im_func",
        "im_self",
        "gi_frame",
        "gi_code",
        "gi_yieldfrom",
        "cr_frame",
        "cr_code",
        "cr_await",
        "ag_frame",
        "ag_code",
        "f_globals",
        "f_locals",
        "f_builtins",
        "f_back",
        "f_code",
        "tb_frame",
        "tb_next",
        "co_code",
    }
)

#: The methods a template may call, per type; any other callable attribute is refused.
_STR_METHODS = frozenset(
    {
        "capitalize",
        "casefold",
        "count",
        "endswith",
        "find",
        "index",
        "isalnum",
        "isalpha",
        "isdecimal",
        "isdigit",
        "islower",
        "isnumeric",
        "isspace",
        "istitle",
        "isupper",
        "join",
        "lower",
        "lstrip",
        "partition",
        "removeprefix",
        "removesuffix",
        "replace",
        "rfind",
        "rindex",
        "rpartition",
        "rsplit",
        "rstrip",
        "split",
        "splitlines",
        "startswith",
        "strip",
        "swapcase",
        "title",
        "upper",
    }
)
_METHODS: tuple[tuple[type, frozenset[str]], ...] = (
    (str, _STR_METHODS),
    (dict, frozenset({"get", "items", "keys", "values"})),
    (list, frozenset({"count", "index"})),
    (tuple, frozenset({"count", "index"})),
    (datetime, frozenset({"isoformat", "weekday", "isoweekday", "date"})),
    (date, frozenset({"isoformat", "weekday", "isoweekday"})),
    (LoopContext, frozenset({"cycle", "changed"})),
)

#: Jinja's built-in filters a template may use. Left out: those that pad or repeat by an argument (center,
#: indent, wordwrap, batch, slice), print Python reprs (pprint), are random (random), emit HTML from text (urlize,
#: xmlattr) or mark text safe (safe): a profile value must never reach an HTML body unescaped.
_BUILTIN_FILTERS = (
    "abs",
    "attr",
    "capitalize",
    "count",
    "d",
    "default",
    "dictsort",
    "e",
    "escape",
    "filesizeformat",
    "first",
    "float",
    "forceescape",
    "format",
    "groupby",
    "int",
    "items",
    "join",
    "last",
    "length",
    "list",
    "lower",
    "map",
    "max",
    "min",
    "reject",
    "rejectattr",
    "replace",
    "reverse",
    "round",
    "select",
    "selectattr",
    "sort",
    "string",
    "striptags",
    "sum",
    "title",
    "tojson",
    "trim",
    "truncate",
    "unique",
    "upper",
    "urlencode",
    "wordcount",
)


class TemplateUnsafeError(UserloopError):
    """A template tried something the sandbox forbids (an internal attribute, a file, running code) or ran past its
    time, step, size or nesting limit."""

    code = "template_unsafe"


class _Limit(Exception):  # noqa: N818 - internal signal, mapped to TemplateUnsafeError with the template's field
    """Raised inside a render when a guard refuses; :func:`_render_one` turns it into :class:`TemplateUnsafeError`."""


# --------------------------------------------------------------------------------------------------------------
# Render state: one per render, reached by the guards through a context variable (thread- and task-safe).


@dataclass
class _State:
    deadline: float
    locale: Locale
    tz: ZoneInfo
    paths: dict[int, str]
    steps: int = 0
    produced: int = 0
    depth: int = 0
    missing: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def tick(self, n: int = 1) -> None:
        self.steps += n
        if self.steps > MAX_STEPS:
            raise _Limit(f"the template ran more than {MAX_STEPS} steps (loops, calls); is a loop too large?")
        if time.thread_time() > self.deadline:
            raise _Limit("the template ran past its time budget")


_STATE: contextvars.ContextVar[_State | None] = contextvars.ContextVar("userloop_template_state", default=None)


def _tick(n: int = 1) -> None:
    state = _STATE.get()
    if state is not None:
        state.tick(n)


# --------------------------------------------------------------------------------------------------------------
# Measuring values: a printed size estimate that stops counting past a limit, so measuring is itself bounded.


def _weight(value: Any, limit: int = MAX_VALUE) -> int:
    """About how many characters ``value`` prints as, counting stops once past ``limit`` (returns > limit)."""
    total = 0
    stack: list[Any] = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str | bytes):
            total += len(v)
        elif isinstance(v, bool) or v is None:
            total += 5
        elif isinstance(v, int):
            total += v.bit_length() // 3 + 2
        elif isinstance(v, dict):
            total += 2 + 4 * len(v)
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, list | tuple | set | frozenset | KeysView | ValuesView | ItemsView):
            total += 2 + 2 * len(v)
            stack.extend(v)
        else:
            total += 16
        if total > limit:
            return total
    return total


def _check_value(value: Any, what: str, limit: int = MAX_VALUE) -> None:
    if _weight(value, limit) > limit:
        raise _Limit(f"{what} would be larger than {limit} characters")


def _materialize(iterable: Iterable[Any]) -> list[Any]:
    """An iterator's items as a list, refusing more than :data:`MAX_ITEMS` items or :data:`MAX_VALUE` in size."""
    items: list[Any] = []
    total = 0
    for item in iterable:
        _tick()
        items.append(item)
        total += _weight(item)
        if len(items) > MAX_ITEMS or total > MAX_VALUE:
            raise _Limit("an iterator in the template yields too much")
    return items


_PRINTF_SPEC = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?([a-zA-Z%])")


def _check_printf(fmt: str, args: Any) -> None:
    """Refuse a ``%`` format whose widths or precisions (``%999999999d``, ``%*d``) or conversions would build a
    string larger than :data:`MAX_VALUE`."""
    conversions = 0
    for m in _PRINTF_SPEC.finditer(fmt):
        for part in (m.group(1), m.group(2)):
            if part == "*" or (part is not None and int(part) > MAX_FORMAT_WIDTH):
                raise _Limit(f"a % format width or precision beyond {MAX_FORMAT_WIDTH} is not allowed")
        if m.group(3) != "%":
            conversions += 1
    if len(fmt) + conversions * (_weight(args) + MAX_FORMAT_WIDTH) > MAX_VALUE:
        raise _Limit(f"a % format would be larger than {MAX_VALUE} characters")


def _check_replace(s: str, old: str, new: str, count: int | None) -> None:
    occurrences = s.count(old) if old else len(s) + 1
    if count is not None and count >= 0:
        occurrences = min(occurrences, count)
    if len(s) + occurrences * (len(new) - len(old)) > MAX_VALUE:
        raise _Limit(f"replace() would build a string larger than {MAX_VALUE} characters")


def _check_join(items: list[Any], sep: str) -> None:
    if _weight(items) + len(sep) * max(len(items) - 1, 0) > MAX_VALUE:
        raise _Limit(f"join() would build a string larger than {MAX_VALUE} characters")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_binop(operator: str, left: Any, right: Any) -> None:
    """Refuse ``*``, ``**``, ``+`` and ``%`` whose result would be too large, before Python computes it."""
    seq = str | list | tuple
    if operator == "*":
        for a, b in ((left, right), (right, left)):
            if (
                isinstance(a, seq)
                and _is_int(b)
                and b > 0
                and (_weight(a) * b > MAX_VALUE or (not isinstance(a, str) and len(a) * b > MAX_ITEMS))
            ):
                raise _Limit(f"repeating a string or list {b} times is beyond the limit")
        if _is_int(left) and _is_int(right) and left.bit_length() + right.bit_length() > MAX_INT_BITS:
            raise _Limit(f"a product beyond {MAX_INT_BITS} bits is not allowed")
    elif operator == "**":
        if (
            _is_int(left)
            and _is_int(right)
            and right > 0
            and abs(left) > 1
            and left.bit_length() * right > MAX_INT_BITS
        ):
            raise _Limit(f"a power beyond {MAX_INT_BITS} bits is not allowed")
    elif operator == "+":
        if isinstance(left, seq) and isinstance(right, seq) and _weight(left) + _weight(right) > MAX_VALUE:
            raise _Limit(f"a sum of strings or lists larger than {MAX_VALUE} characters is not allowed")
    elif operator == "%" and isinstance(left, str):
        _check_printf(left, right)


# --------------------------------------------------------------------------------------------------------------
# Undefined values: empty when printed, reported as missing, never an error in a send.


class _Undefined(jinja2.ChainableUndefined):
    """Prints as ``""`` and records its name (``person.nickname``) in the render's missing list (so does a loop over
    it; a test such as ``{% if person.vip %}`` or ``|default`` does not); arithmetic on it stays undefined and
    comparisons are false, so ``{{ benefit.amount * 2 }}`` without an amount prints nothing."""

    __slots__ = ()

    def _path(self) -> str:
        name = self._undefined_name
        name = "?" if name is None else str(name)
        state = _STATE.get()
        obj = self._undefined_obj
        if state is not None and obj is not jinja2.runtime.missing:
            base = state.paths.get(id(obj))
            if base is not None:
                return f"{base}.{name}"
        return name

    def _note(self) -> None:
        if self._undefined_exception is SecurityError:
            raise SecurityError(self._undefined_hint or "unsafe")
        state = _STATE.get()
        if state is not None:
            path = self._path()
            if path not in state.missing:
                state.missing.append(path)

    def __str__(self) -> str:
        self._note()
        return ""

    def __html__(self) -> str:
        return str(self)

    def __iter__(self) -> Iterator[Any]:
        self._note()  # a loop over an absent list is a gap in the data, like printing an absent value
        return iter(())

    def _same(self, *_: Any) -> _Undefined:
        return self

    def _false(self, *_: Any) -> bool:
        return False

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _same  # type: ignore[assignment]
    __truediv__ = __rtruediv__ = __floordiv__ = __rfloordiv__ = __mod__ = __rmod__ = _same  # type: ignore[assignment]
    __pow__ = __rpow__ = __pos__ = __neg__ = _same  # type: ignore[assignment]
    __lt__ = __le__ = __gt__ = __ge__ = _false  # type: ignore[assignment]

    def __hash__(self) -> int:
        return id(type(self))


# --------------------------------------------------------------------------------------------------------------
# The sandbox.


def _allowed_methods(obj: Any) -> frozenset[str]:
    for kind, names in _METHODS:
        if isinstance(obj, kind):
            return names
    return frozenset()


#: Filters that visit every item in Python (sorting, mapping, grouping); their input is capped at MAX_ITEMS.
_ITERATING_FILTERS = frozenset(
    {"dictsort", "groupby", "items", "join", "list", "map", "max", "min", "reject", "rejectattr", "select"}
    | {"selectattr", "sort", "sum", "unique"}
)


def _guard_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """``func`` with its value and arguments measured first, an iterator value collected (bounded) into a list, and
    the filters that amplify (join, replace, format) checked against their result size."""
    lead = 1 if getattr(func, "jinja_pass_arg", None) is not None else 0

    @functools.wraps(func)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        _tick()
        head, rest = args[:lead], list(args[lead:])
        if rest and isinstance(rest[0], Iterator):
            rest[0] = _materialize(rest[0])
        for arg in (*rest, *kwargs.values()):
            _check_value(arg, f"the input of the {name!r} filter")
        if name in _ITERATING_FILTERS and rest and isinstance(rest[0], Sized) and len(rest[0]) > MAX_ITEMS:
            raise _Limit(f"the {name!r} filter may go over at most {MAX_ITEMS} items")
        if name == "join" and rest:
            items = rest[0] if isinstance(rest[0], list) else _materialize(iter(rest[0]))
            rest[0] = items
            sep = rest[1] if len(rest) > 1 else kwargs.get("d", "")
            _check_join(items, str(sep))
        elif name == "replace" and len(rest) >= 3:
            count = rest[3] if len(rest) > 3 else kwargs.get("count")
            _check_replace(str(rest[0]), str(rest[1]), str(rest[2]), count)
        elif name == "round":
            precision = rest[1] if len(rest) > 1 else kwargs.get("precision", 0)
            if _is_int(precision) and abs(precision) > MAX_ROUND_DIGITS:
                raise _Limit(f"round() to more than {MAX_ROUND_DIGITS} digits is not allowed")
        elif name == "format" and rest:
            _check_printf(str(rest[0]), (rest[1:], kwargs))
        return func(*head, *rest, **kwargs)

    return guarded


class _GuardedIter:
    """Iterates for a ``{% for %}`` loop, ticking the step counter and the clock at every item."""

    def __init__(self, iterable: Any) -> None:
        self._source = iterable
        self._it = iter(iterable)

    def __iter__(self) -> _GuardedIter:
        return self

    def __next__(self) -> Any:
        item = next(self._it)
        _tick()
        return item

    def __len__(self) -> int:
        return len(self._source)


class _Sandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox with the limits of this module (see the module docstring)."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, *, autoescape: bool) -> None:
        super().__init__(autoescape=autoescape, undefined=_Undefined, auto_reload=False, cache_size=0)
        self.globals.clear()
        self.globals["range"] = _safe_range
        self.filters = {name: _guard_filter(name, FILTERS[name]) for name in _BUILTIN_FILTERS}
        self.filters["money"] = _guard_filter("money", _money_filter)
        self.filters["date"] = _guard_filter("date", _date_filter)

    # -- attributes

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if not super().is_safe_attribute(obj, attr, value) or attr in _DENIED_ATTRS:
            return False
        if isinstance(obj, jinja2.Undefined):
            return True  # a chained undefined (person.address.city without an address) stays undefined
        if callable(value) and not isinstance(value, Macro):
            return attr in _allowed_methods(obj)
        return True

    def unsafe_undefined(self, obj: Any, attribute: str) -> jinja2.Undefined:
        raise SecurityError(f"access to attribute {attribute!r} of a {type(obj).__name__!r} value is not allowed")

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        if super().wrap_str_format(value) is not None:
            raise SecurityError("str.format and str.format_map are not allowed; use ~ or the % operator")
        return None

    def getattr(self, obj: Any, attribute: str) -> Any:
        _tick()
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        _tick()
        return super().getitem(obj, argument)

    # -- operators and calls

    def call_binop(self, context: jinja2.runtime.Context, operator: str, left: Any, right: Any) -> Any:
        _tick()
        _check_binop(operator, left, right)
        return super().call_binop(context, operator, left, right)

    def call(self, context: jinja2.runtime.Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        _tick()
        state = _STATE.get()
        self_obj = getattr(obj, "__self__", None)
        if isinstance(self_obj, str) and not isinstance(obj, Macro):
            name = getattr(obj, "__name__", "")
            if name == "join" and args:
                items = _materialize(iter(args[0]))
                _check_join(items, self_obj)
                args = (items, *args[1:])
            elif name == "replace" and len(args) >= 2:
                count = args[2] if len(args) > 2 else kwargs.get("count")
                _check_replace(self_obj, str(args[0]), str(args[1]), count)
        if isinstance(obj, Macro) and state is not None:
            state.depth += 1
            try:
                if state.depth > MAX_MACRO_DEPTH:
                    raise _Limit(f"macros nest deeper than {MAX_MACRO_DEPTH} calls; does a macro call itself?")
                return super().call(context, obj, *args, **kwargs)
            finally:
                state.depth -= 1
        return super().call(context, obj, *args, **kwargs)

    # -- the guards compiled into every template (see _Guards)

    def ul_iter(self, iterable: Any) -> Any:
        if isinstance(iterable, jinja2.Undefined):
            return iterable
        return _GuardedIter(iterable)

    def ul_out(self, value: Any) -> Any:
        state = _STATE.get()
        size = _weight(value, MAX_OUTPUT)
        if size > MAX_OUTPUT:
            raise _Limit(f"a printed value is larger than {MAX_OUTPUT} characters")
        if state is not None:
            state.produced += size
            if state.produced > MAX_PRODUCED:
                raise _Limit(f"the template produced more than {MAX_PRODUCED} characters")
        return "" if value is None else value  # a null profile value prints empty, not "None"

    def ul_data(self, size: int) -> str:
        state = _STATE.get()
        if state is not None:
            state.produced += size
            if state.produced > MAX_PRODUCED:
                raise _Limit(f"the template produced more than {MAX_PRODUCED} characters")
        return ""

    @jinja2.pass_context
    def ul_concat(self, context: jinja2.runtime.Context, *parts: Any) -> str:
        _check_value(list(parts), "a ~ concatenation")
        parts = tuple("" if part is None else part for part in parts)
        return markup_join(parts) if context.eval_ctx.autoescape else str_join(parts)


def _safe_range(*args: Any) -> range:
    try:
        rng = range(*args)
        size = len(rng)
    except OverflowError:
        size = MAX_RANGE + 1
        rng = range(0)
    if size > MAX_RANGE:
        raise _Limit(f"range() may give at most {MAX_RANGE} items")
    return rng


def _guard_call(name: str, lineno: int, *args: nodes.Expr) -> nodes.Call:
    call = nodes.Call(nodes.EnvironmentAttribute(name, lineno=lineno), list(args), [], None, None, lineno=lineno)
    for arg in args:
        arg.set_lineno(lineno)  # only fills nodes without one (a Const made here)
    return call


class _Guards(NodeTransformer):
    """Rewrites a parsed template so loops, ``~`` and output pass through the sandbox's guards."""

    def visit_For(self, node: nodes.For) -> nodes.Node:  # noqa: N802 - Jinja's visitor names
        self.generic_visit(node)
        node.iter = _guard_call("ul_iter", node.iter.lineno, cast(nodes.Expr, node.iter))
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:  # noqa: N802 - Jinja's visitor names
        self.generic_visit(node)
        return _guard_call("ul_concat", node.lineno, *node.nodes)

    def visit_Output(self, node: nodes.Output) -> nodes.Node:  # noqa: N802 - Jinja's visitor names
        self.generic_visit(node)
        children: list[nodes.Expr] = []
        literal = 0
        for child in node.nodes:
            if isinstance(child, nodes.TemplateData):
                literal += len(child.data)
                children.append(child)
            else:
                children.append(_guard_call("ul_out", child.lineno, child))
        if literal:
            children.append(_guard_call("ul_data", node.lineno, nodes.Const(literal)))
        node.nodes = children
        return node


@functools.cache
def _sandbox(autoescape: bool) -> _Sandbox:
    """The one sandbox per escaping mode (made on first use: the filters it holds are defined further down)."""
    return _Sandbox(autoescape=autoescape)


def _invalid(field_name: str, message: str) -> ValidationError:
    return ValidationError(f"{field_name}: {message}", code="template_invalid", field=field_name)


def _unsafe(field_name: str, message: str) -> TemplateUnsafeError:
    return TemplateUnsafeError(f"{field_name}: {message}", field=field_name)


def _build(source: str, autoescape: bool) -> jinja2.Template:
    env = _sandbox(autoescape)
    tree = cast(nodes.Template, _Guards().visit(env.parse(source)))
    tree.set_environment(env)
    return env.from_string(tree)


@functools.lru_cache(maxsize=1024)
def _checked(source: str, autoescape: bool) -> jinja2.Template | tuple[Literal["invalid", "unsafe"], str]:
    """The compiled, guarded template, or why ``source`` is refused (kind and message); cached by source, so a
    material's templates are parsed and checked once however many people it is rendered for."""
    if len(source.encode("utf-8")) > MAX_TEMPLATE_BYTES:
        return "invalid", f"the template is larger than {MAX_TEMPLATE_BYTES} bytes"
    try:
        return _check_tree(source, autoescape)
    except jinja2.TemplateSyntaxError as e:
        return "invalid", f"line {e.lineno}: {e.message}"
    except (RecursionError, SyntaxError, MemoryError):  # Jinja's parser or Python's compiler gave up on the depth
        return "invalid", "the template nests too deeply (brackets, operators or blocks)"


def _check_tree(source: str, autoescape: bool) -> jinja2.Template | tuple[Literal["invalid", "unsafe"], str]:
    env = _sandbox(autoescape)
    tree = env.parse(source)
    for size, _ in enumerate(tree.find_all(nodes.Node), start=1):
        if size > MAX_NODES:
            return "invalid", f"the template has more than {MAX_NODES} parts; split it or simplify it"
    for reader in tree.find_all((nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)):
        kind = type(reader).__name__.lower()
        return "invalid", f"line {reader.lineno}: {{% {kind} %}} is not allowed: a material cannot read files"
    for modifier in tree.find_all((nodes.EvalContextModifier, nodes.ScopedEvalContextModifier)):
        return "invalid", f"line {modifier.lineno}: {{% autoescape %}} blocks are not allowed"
    for loop in tree.find_all(nodes.For):
        if loop.recursive:
            return "invalid", f"line {loop.lineno}: recursive loops are not allowed"
    for ref in tree.find_all(nodes.Name):
        if ref.name == "self":  # the template reference; Jinja's meta does not report it as undeclared
            return "invalid", f"line {ref.lineno}: 'self' is not allowed; a template reads only its scope"
    for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Filter)):
        name: object = None
        if isinstance(node, nodes.Getattr):
            name = node.attr
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
            # person['_x'] may read a data key named so; person['__class__'] is refused here, and any attribute
            # behind a missing key is refused at run time
            value = node.arg.value
            name = value if isinstance(value, str) and value.startswith("__") else None
        elif isinstance(node, nodes.Filter) and node.name == "attr" and node.args:
            arg = node.args[0]
            name = arg.value if isinstance(arg, nodes.Const) else None
        if isinstance(name, str) and (name.startswith("_") or name in _DENIED_ATTRS):
            return "unsafe", f"line {node.lineno}: the attribute {name!r} is not allowed"
    unknown = sorted(find_undeclared_variables(tree) - SCOPE_NAMES - _GLOBAL_NAMES)
    if unknown:
        scope = ", ".join(sorted(SCOPE_NAMES))
        return "invalid", f"unknown name(s) {', '.join(unknown)}; a template reads only {scope} and range()"
    return _build(source, autoescape)


def _compile(source: str, autoescape: bool, field_name: str) -> jinja2.Template:
    """Check ``source`` (size, syntax, no include/import/extends, only scope names, no internal attributes) and
    compile it with the guards; :class:`ValidationError` (``template_invalid``) or :class:`TemplateUnsafeError`
    naming ``field_name``."""
    outcome = _checked(source, autoescape)
    if isinstance(outcome, tuple):
        kind, message = outcome
        raise _unsafe(field_name, message) if kind == "unsafe" else _invalid(field_name, message)
    return outcome


# --------------------------------------------------------------------------------------------------------------
# Filters: money and date in the person's locale.

#: Currency symbols by locale, from CLDR (common/main/en.xml and zh.xml, currencies/…/symbol): in ``en`` the yuan
#: is "CN¥" (``¥`` alone is the yen), in ``zh`` it is "¥".
_CURRENCY_SYMBOLS: dict[str, dict[Locale, str]] = {
    "CNY": {"zh-CN": "¥", "en": "CN¥"},
    "USD": {"zh-CN": "US$", "en": "$"},
    "HKD": {"zh-CN": "HK$", "en": "HK$"},
    "EUR": {"zh-CN": "€", "en": "€"},
}
_MONTHS_ABBR = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def _state_locale() -> Locale:
    state = _STATE.get()
    return state.locale if state is not None else "zh-CN"


def _warn(message: str) -> None:
    state = _STATE.get()
    if state is not None and message not in state.warnings:
        state.warnings.append(message)


@jinja2.pass_context
def _money_filter(_context: Any, value: Any, currency: str = "CNY") -> Any:
    """``1234.5|money`` → ``¥1,234.50`` (zh-CN) or ``CN¥1,234.50`` (en): two decimals rounded half up, grouped by
    thousands, the sign before the symbol (CLDR decimal and currency patterns ``¤#,##0.00`` for both locales)."""
    if isinstance(value, jinja2.Undefined) or value is None:
        return value
    symbols = _CURRENCY_SYMBOLS.get(str(currency).upper())
    if symbols is None:
        raise ValueError(f"money: unknown currency {currency!r} (known: {', '.join(_CURRENCY_SYMBOLS)})")
    try:
        if isinstance(value, bool):
            raise InvalidOperation
        amount = Decimal(str(value).strip())
        if not amount.is_finite():
            raise InvalidOperation
        amount = amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    except (InvalidOperation, ValueError):
        _warn(f"money: {str(value)[:40]!r} is not a number / 不是数字")
        return value
    sign = "-" if amount < 0 else ""
    return f"{sign}{symbols[_state_locale()]}{abs(amount):,.2f}"


def _as_datetime(value: Any, tz: ZoneInfo) -> date | None:
    if isinstance(value, datetime):
        return value.astimezone(tz) if value.tzinfo is not None else value
    if isinstance(value, date):
        return value
    if _is_int(value) or isinstance(value, float):
        try:
            return datetime.fromtimestamp(float(value) / 1000.0, UTC).astimezone(tz)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str):
        text = value.strip()
        try:
            if len(text) == 10:
                return date.fromisoformat(text)
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed.astimezone(tz) if parsed.tzinfo is not None else parsed
    return None


@jinja2.pass_context
def _date_filter(_context: Any, value: Any, style: str = "medium", time: bool | None = None) -> Any:
    """A date or datetime in the person's locale, after CLDR's Gregorian formats: ``medium`` (default) is
    ``Dec 7, 2026`` / ``2026年12月7日``, ``long`` ``December 7, 2026`` / ``2026年12月7日``, ``short`` ``12/7/26`` /
    ``2026/12/7``; a datetime adds its time (``2:30 PM`` / ``14:30``) unless ``time=false``. Aware datetimes and
    epoch milliseconds are shown in the scope's time zone; ISO 8601 strings are read."""
    if isinstance(value, jinja2.Undefined) or value is None:
        return value
    state = _STATE.get()
    tz = state.tz if state is not None else ZoneInfo("Asia/Shanghai")
    moment = _as_datetime(value, tz)
    if moment is None:
        _warn(f"date: {str(value)[:40]!r} is not a date / 不是日期")
        return value
    if style not in ("short", "medium", "long"):
        raise ValueError(f"date: style must be short, medium or long, not {style!r}")
    y, m, d = moment.year, moment.month, moment.day
    if _state_locale() == "zh-CN":
        text = f"{y}/{m}/{d}" if style == "short" else f"{y}年{m}月{d}日"
    elif style == "short":
        text = f"{m}/{d}/{y % 100:02d}"
    else:
        text = f"{(_MONTHS if style == 'long' else _MONTHS_ABBR)[m - 1]} {d}, {y}"
    with_time = isinstance(moment, datetime) if time is None else bool(time) and isinstance(moment, datetime)
    if with_time:
        assert isinstance(moment, datetime)
        if _state_locale() == "zh-CN":
            text += f" {moment.hour:02d}:{moment.minute:02d}"
        else:
            hour = moment.hour % 12 or 12
            text += f", {hour}:{moment.minute:02d} {'AM' if moment.hour < 12 else 'PM'}"
    return text


# --------------------------------------------------------------------------------------------------------------
# Materials, scopes and results.

_PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


class Material(BaseModel):
    """One message's templates for one channel, in zh-CN and/or en.

    ``body`` is the text (HTML when ``html``, e-mail only); ``subject`` the e-mail subject or push/inbox title;
    ``params`` the named values of a provider-side template whose text the provider approved beforehand (Aliyun SMS
    ``TemplateParam`` with ``TemplateCode``, Tencent Cloud SMS ``TemplateParamSet`` with ``TemplateId``), each a
    template rendered like the body; ``provider_template`` names that provider template. ``locale_property`` is the
    profile property holding the person's language. Every template is checked and compiled when the material is made.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    channel: ChannelKind
    subject: dict[Locale, str] | None = None
    body: dict[Locale, str] = Field(min_length=1)
    html: bool = False
    params: dict[str, str] = Field(default_factory=dict)
    provider_template: str | None = Field(default=None, min_length=1, max_length=128)
    locale_property: str = Field(default="$language", min_length=1, max_length=128)

    @field_validator("params")
    @classmethod
    def _param_names(cls, params: dict[str, str]) -> dict[str, str]:
        for name in params:
            if not _PARAM_NAME.match(name):
                raise ValidationError(
                    f"params: {name!r} is not a parameter name (letters, digits, _; at most 64)",
                    code="template_invalid",
                    field=f"params.{name}",
                )
        return params

    @model_validator(mode="after")
    def _templates(self) -> Material:
        if self.html and self.channel != "email":
            raise ValidationError("html bodies are for the email channel only", code="invalid", field="html")
        if self.subject is not None and not self.subject:
            raise ValidationError("subject, when given, needs at least one locale", code="invalid", field="subject")
        for label, source, autoescape in self.templates():
            _compile(source, autoescape, label)
        return self

    def templates(self) -> list[tuple[str, str, bool]]:
        """Every template as ``(field, source, autoescape)``: ``subject.en``, ``body.zh-CN``, ``params.code``…"""
        out = [(f"subject.{loc}", src, False) for loc, src in (self.subject or {}).items()]
        out += [(f"body.{loc}", src, self.html) for loc, src in self.body.items()]
        out += [(f"params.{name}", src, False) for name, src in self.params.items()]
        return out


class RenderScope(BaseModel):
    """What a template can read for one person.

    ``person`` is the profile (``id`` and properties, e.g. ``$language``, ``name``); ``tags`` tag name → value;
    ``models`` model outputs (``rfm_class``, ``lifecycle``, ``churn_tier``, ``clv``); ``benefit`` the benefit granted
    (``amount``, ``threshold``, ``code``, ``valid_until``); ``links`` signed URLs (``unsubscribe``, ``preferences``);
    ``journey`` the journey (``name``). ``timezone`` is the IANA zone dates are shown in."""

    model_config = ConfigDict(extra="forbid")

    person: dict[str, Any] = Field(default_factory=dict)
    tags: dict[str, Any] = Field(default_factory=dict)
    models: dict[str, Any] = Field(default_factory=dict)
    benefit: dict[str, Any] = Field(default_factory=dict)
    links: dict[str, str] = Field(default_factory=dict)
    journey: dict[str, Any] = Field(default_factory=dict)
    timezone: str = "Asia/Shanghai"

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValidationError(f"unknown time zone {value!r}", code="invalid", field="timezone") from None
        return value


@dataclass(frozen=True)
class RenderResult:
    """A material rendered for one person: the ``text`` (body), ``subject`` and provider ``params``, the ``locale``
    used, the undefined names that printed empty (``missing``), and notes for an operator (``warnings``)."""

    text: str
    subject: str | None
    params: dict[str, str]
    locale: Locale
    missing: list[str]
    warnings: list[str]


def choose_locale(value: Any, default_locale: Locale) -> Locale:
    """The locale for a person's language property: ``zh…`` → zh-CN, ``en…`` → en, anything else the default."""
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered.startswith("zh"):
            return "zh-CN"
        if lowered.startswith("en"):
            return "en"
    return default_locale


def _plain(value: Any, path: str, paths: dict[int, str], depth: int = 0) -> Any:
    """A deep copy of ``value`` as plain data a template may see; containers' paths recorded for missing-name
    reports. A str subclass (``Markup``) becomes a plain str, so a profile value is always escaped in HTML."""
    if value is None or isinstance(value, bool | int | float | Decimal | date):
        return value
    if isinstance(value, str):
        return str.__str__(value)
    if depth >= 32:
        return None
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        paths[id(out)] = path
        for k, v in value.items():
            key = k if type(k) is str else str(k)
            out[key] = _plain(v, f"{path}.{key}", paths, depth + 1)
        return out
    if isinstance(value, list | tuple | set | frozenset):
        items: list[Any] = []
        paths[id(items)] = path
        items.extend(_plain(v, f"{path}.{i}", paths, depth + 1) for i, v in enumerate(value))
        return items
    return str(value)


def _pick(templates: Mapping[Locale, str], wanted: Locale, what: str, warnings: list[str]) -> tuple[Locale, str]:
    if wanted in templates:
        return wanted, templates[wanted]
    other: Locale = "en" if wanted == "zh-CN" else "zh-CN"
    warnings.append(f"{what} has no {wanted} version; used {other} / {what} 没有 {wanted} 版本，已改用 {other}")
    return other, templates[other]


def _template_line(exc: BaseException) -> int | None:
    tb = exc.__traceback__
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _render_one(source: str, autoescape: bool, label: str, variables: dict[str, Any]) -> str:
    template = _compile(source, autoescape, label)
    try:
        text = template.render(variables)
    except (_Limit, SecurityError, RecursionError, MemoryError) as e:
        line = _template_line(e)
        where = f"line {line}: " if line else ""
        message = str(e) if not isinstance(e, RecursionError) else "the template nests too deeply"
        raise _unsafe(label, f"{where}{message}") from None
    except UserloopError:
        raise
    except Exception as e:  # any runtime error of a template is the template's fault
        line = _template_line(e)
        where = f"line {line}: " if line else ""
        raise _invalid(label, f"{where}{type(e).__name__}: {e}") from None
    if len(text) > MAX_OUTPUT:
        raise _unsafe(label, f"the rendered text is larger than {MAX_OUTPUT} characters")
    return text


def render(
    material: Material,
    scope: RenderScope,
    default_locale: Locale = "zh-CN",
    *,
    budget_ms: float = RENDER_BUDGET_MS,
) -> RenderResult:
    """Render ``material`` for the person in ``scope``: choose the locale from the person's ``locale_property``
    (falling back to the material's other locale with a warning), then the subject, body and params, all within one
    ``budget_ms`` budget of the rendering thread's CPU time. Undefined values print empty and are listed in ``missing``.

    Raises :class:`TemplateUnsafeError` when a limit is hit, :class:`ValidationError` (``template_invalid``) when the
    template fails otherwise (a type error, an unknown currency)."""
    if default_locale not in LOCALES:
        raise ValidationError(f"unknown default locale {default_locale!r}", code="invalid", field="default_locale")
    warnings: list[str] = []
    wanted = choose_locale(scope.person.get(material.locale_property), default_locale)
    locale, body = _pick(material.body, wanted, "body", warnings)
    paths: dict[int, str] = {}
    variables = {name: _plain(getattr(scope, name), name, paths) for name in sorted(SCOPE_NAMES)}
    state = _State(
        deadline=time.thread_time() + budget_ms / 1000.0,
        locale=locale,
        tz=ZoneInfo(scope.timezone),
        paths=paths,
    )
    token = _STATE.set(state)
    try:
        subject = None
        if material.subject:
            sub_locale, sub_source = _pick(material.subject, locale, "subject", warnings)
            subject = _render_one(sub_source, False, f"subject.{sub_locale}", variables)
            subject = " ".join(subject.splitlines())  # one header line: a profile value cannot add headers
        text = _render_one(body, material.html, f"body.{locale}", variables)
        params = {
            name: _render_one(src, False, f"params.{name}", variables) for name, src in sorted(material.params.items())
        }
    finally:
        _STATE.reset(token)
    return RenderResult(
        text=text,
        subject=subject,
        params=params,
        locale=locale,
        missing=list(state.missing),
        warnings=warnings + state.warnings,
    )


def preview(material: Material, scope: RenderScope, default_locale: Locale = "zh-CN") -> RenderResult:
    """The material as one person would get it (``userloop templates preview``), with a warning per undefined
    value so the operator sees what printed empty."""
    result = render(material, scope, default_locale)
    notes = [f"{name} is undefined and printed empty / {name} 未定义，显示为空" for name in result.missing]
    return RenderResult(
        text=result.text,
        subject=result.subject,
        params=result.params,
        locale=result.locale,
        missing=result.missing,
        warnings=result.warnings + notes,
    )


# --------------------------------------------------------------------------------------------------------------
# HTML e-mail helpers.


class _TagFinder(HTMLParser):
    """Collects the source spans of ``<a>`` start tags and ``</body>`` end tags (WHATWG HTML tokenization as
    implemented by :mod:`html.parser`; script and style contents are not scanned for tags)."""

    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=False)
        self._line_starts = [0]
        for i, ch in enumerate(source):
            if ch == "\n":
                self._line_starts.append(i + 1)
        self._source = source
        self.anchors: list[tuple[int, int, list[tuple[str, str | None]], bool]] = []
        self.body_ends: list[int] = []

    def _offset(self) -> int:
        line, col = self.getpos()
        return self._line_starts[line - 1] + col

    def _anchor(self, tag: str, attrs: list[tuple[str, str | None]], self_closing: bool) -> None:
        if tag != "a":
            return
        raw = self.get_starttag_text() or ""
        start = self._offset()
        if self._source[start : start + len(raw)] != raw:  # the parser's position disagrees: leave the tag alone
            return
        self.anchors.append((start, start + len(raw), attrs, self_closing))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._anchor(tag, attrs, False)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._anchor(tag, attrs, True)

    def handle_endtag(self, tag: str) -> None:
        if tag == "body":
            self.body_ends.append(self._offset())


def _scan(source: str) -> _TagFinder:
    finder = _TagFinder(source)
    finder.feed(source)
    finder.close()
    return finder


def _attr(name: str, value: str | None) -> str:
    return f" {name}" if value is None else f' {name}="{html_lib.escape(value, quote=True)}"'


def track_links(
    html: str, wrap: Callable[[str], str], *, keep: Iterable[str] = (), pixel_url: str | None = None
) -> str:
    """``html`` with every ``<a href="http(s)://…">`` pointing at ``wrap(url)`` (a click-tracking redirect).

    Left alone: other schemes (``mailto:``, ``tel:``), anchors and relative links, links marked
    ``data-no-track`` or ``data-unsubscribe``, and any URL in ``keep`` (pass the unsubscribe link, which must reach
    the person's preferences without a redirect, RFC 8058 §3). The href is read as the parser decodes it (entities
    resolved), given to ``wrap`` as the real URL, and written back escaped; only rewritten tags change (attributes
    keep their order, values are re-quoted with ``"``), every other byte of the document is returned as it was.
    With ``pixel_url`` the open pixel goes in too (as :func:`add_pixel`), from the same one scan of the document."""
    kept = set(keep)
    finder = _scan(html)
    out: list[str] = []
    pos = shift = 0
    for start, end, attrs, self_closing in finder.anchors:
        names = {name for name, _ in attrs}
        if "data-no-track" in names or "data-unsubscribe" in names:
            continue
        hrefs = [v for n, v in attrs if n == "href"]
        if len(hrefs) != 1 or hrefs[0] is None:
            continue
        url = hrefs[0].strip()
        if not url.lower().startswith(("http://", "https://")) or url in kept or hrefs[0] in kept:
            continue
        new_attrs = [(n, wrap(url) if n == "href" else v) for n, v in attrs]
        tag = "<a" + "".join(_attr(n, v) for n, v in new_attrs) + (" />" if self_closing else ">")
        out.append(html[pos:start])
        out.append(tag)
        if finder.body_ends and end <= finder.body_ends[-1]:
            shift += len(tag) - (end - start)  # how far the last </body> moved
        pos = end
    out.append(html[pos:])
    linked = "".join(out)
    if pixel_url is None:
        return linked
    if not finder.body_ends:
        return linked + _pixel(pixel_url)
    at = finder.body_ends[-1] + shift
    return linked[:at] + _pixel(pixel_url) + linked[at:]


def _pixel(pixel_url: str) -> str:
    return (
        f'<img src="{html_lib.escape(pixel_url, quote=True)}" width="1" height="1" alt="" '
        'style="border:0;width:1px;height:1px" />'
    )


def add_pixel(html: str, pixel_url: str) -> str:
    """``html`` with a 1×1 open-tracking image before the last ``</body>`` (appended at the end when there is
    none); the URL is escaped into the ``src`` attribute."""
    tag = (
        f'<img src="{html_lib.escape(pixel_url, quote=True)}" width="1" height="1" alt="" '
        'style="border:0;width:1px;height:1px" />'
    )
    finder = _scan(html)
    if finder.body_ends:
        at = finder.body_ends[-1]
        return html[:at] + tag + html[at:]
    return html + tag
