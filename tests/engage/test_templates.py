"""Materials rendered in the sandbox (userloop.engage.templates).

The acceptance criteria of issue #14 for templates: "a template cannot read files, run code or loop forever". The
escape battery below is the known Jinja sandbox breakouts (attribute walks to ``__globals__``, ``cycler``/``lipsum``/
``self`` globals, ``__subclasses__`` via ``__mro__``, ``config``, ``str.format`` attribute walks, include of a file)
and the resource attacks (huge ``range``, nested loops, repetition, powers, recursive macros, doubling by ``~``);
each must stop within a second with ``template_unsafe`` or ``template_invalid`` and never print a file's content.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, date, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from markupsafe import Markup, escape

from tests.conftest import examples
from userloop.core.errors import UserloopError, ValidationError
from userloop.engage.templates import (
    MAX_OUTPUT,
    Material,
    RenderScope,
    TemplateUnsafeError,
    add_pixel,
    choose_locale,
    preview,
    render,
    track_links,
)

SECRET = "ul-secret-3f9a"


def sms(body: str, **kw: Any) -> Material:
    return Material(channel="sms", body={"en": body, "zh-CN": body}, **kw)


def scope(**person: Any) -> RenderScope:
    return RenderScope(
        person={"id": 7, "name": "Ann", "$language": "en", **person},
        tags={"vip": True, "city": "上海"},
        models={"rfm_class": "champions", "lifecycle": "active", "churn_tier": "low", "clv": 1234.5},
        benefit={"amount": 20, "threshold": 199, "code": "SAVE20", "valid_until": date(2026, 12, 31)},
        links={"unsubscribe": "https://u.example/unsub?t=a&s=b", "preferences": "https://u.example/prefs"},
        journey={"name": "winback"},
    )


def attempt(body: str) -> tuple[str, str]:
    """Make and render an SMS material with ``body``; the error code and message, or ("ok", text)."""
    try:
        return "ok", render(sms(body), scope(), "en").text
    except UserloopError as e:
        return e.code, e.message


# -- the escape battery --------------------------------------------------------------------------------------------

ESCAPES = [
    "{{ person.__class__.__init__.__globals__ }}",
    "{{ person.items.__self__.__class__.__mro__[1].__subclasses__() }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ ''.__class__.__base__.__subclasses__()[0] }}",
    "{{ cycler.__init__.__globals__.os.popen('cat /etc/passwd').read() }}",
    "{{ joiner.__init__.__globals__.os }}",
    "{{ namespace.__init__.__globals__.os }}",
    "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "{{ lipsum.__globals__ }}",
    "{{ self.__init__.__globals__.__builtins__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ self }}",
    "{{ config }}",
    "{{ config.items() }}",
    "{{ request.application.__globals__ }}",
    "{{ range.__globals__ }}",
    "{{ range.__self__ }}",
    "{{ person.__dict__ }}",
    "{{ person|attr('__class__') }}",
    "{{ person['__class__'] }}",
    "{{ person.items().mro() }}",
    "{{ '{0.__class__.__mro__}'.format(person) }}",
    "{{ '{0.__init__.__globals__}'.format(range) }}",
    "{{ '{x.__class__}'.format_map({'x': person}) }}",
    "{% set f = 'form' ~ 'at' %}{{ ('{0.__class__}'|attr(f))(person) }}",
    "{% set a = '__cla' ~ 'ss__' %}{{ person|attr(a) }}",
    "{% set a = '__cla' ~ 'ss__' %}{{ person[a] }}",
    "{% set a = '__glo' ~ 'bals__' %}{{ range|attr(a) }}",
    "{{ (person|list|map(attribute='__class__')|list) }}",
    "{{ [person]|sort(attribute='__class__') }}",
    "{% include '/etc/passwd' %}",
    "{% include '/etc/' ~ 'passwd' %}",
    "{% import '/etc/passwd' as p %}{{ p }}",
    "{% from '/etc/passwd' import x %}",
    "{% extends '/etc/passwd' %}",
    "{% include '{secret}' %}",
    "{{ person.name.ljust(1000000000) }}",
    "{{ person.name.encode('utf-8').decode }}",
    "{% autoescape false %}{{ person.name }}{% endautoescape %}",
    "{{ person.name|safe }}",
    "{{ person.name|pprint }}",
    "{% for x in person recursive %}{{ loop(x) }}{% endfor %}",
]

RESOURCE_ATTACKS = [
    "{% for i in range(10**9) %}x{% endfor %}",
    "{{ range(10**100)|list }}",
    "{{ range(10**9)|length }}",
    "{% for i in range(10000) %}{% for j in range(10000) %}x{% endfor %}{% endfor %}",
    "{% for i in range(10000) %}{% for j in range(10000) %}{% for k in range(10000) %}{% endfor %}{% endfor %}"
    "{% endfor %}",
    "{{ 'x' * 10**9 }}",
    "{{ 10**9 * 'x' }}",
    "{{ ['x'] * 10**9 }}",
    "{{ 'x' ** 10 }}",
    "{{ 10 ** (10 ** 10) }}",
    "{{ 9 ** (9 ** (9 ** 9)) }}",
    "{{ (10 ** 1000) * (10 ** 1000) * (10 ** 1000) * (10 ** 1000) * (10 ** 1000) }}",
    "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
    "{% macro f() %}{{ f() }}{{ f() }}{% endmacro %}{{ f() }}",
    "{% macro f(n) %}{% if n < 40 %}{{ f(n + 1) }}{{ f(n + 1) }}{% endif %}{% endmacro %}{{ f(0) }}",
    "{% macro g(s, n) %}{% if n < 30 %}{{ g(s ~ s, n + 1) }}{% endif %}{% endmacro %}{{ g('x', 0) }}",
    "{% macro g(s, n) %}{% if n < 30 %}{{ g(s + s, n + 1) }}{% endif %}{% endmacro %}{{ g('x', 0) }}",
    "{% set s = 'x' * 500000 %}{{ s ~ s ~ s ~ s ~ s }}",
    "{% set s = 'x' * 500000 %}{{ [s, s, s, s, s]|join }}",
    "{% set s = 'x' * 500000 %}{{ ''.join([s, s, s, s, s]) }}",
    "{% set s = 'x' * 500000 %}{{ [s, s, s, s, s] }}",
    "{% set s = 'x' * 200000 %}{{ s|replace('x', s) }}",
    "{% set s = 'x' * 200000 %}{{ s.replace('', 'yy') }}",
    "{% set s = 'x' * 1000 %}{% for i in range(10000) %}{{ s }}{% endfor %}",
    "{% set s = 'x' * 1000 %}{% set t %}{% for i in range(10000) %}{{ s }}{% endfor %}{% endset %}ok",
    "{% for i in range(10000) %}" + "y" * 1000 + "{% endfor %}",
    "{{ '%999999999d' % 1 }}",
    "{{ '%*d' % (999999999, 1) }}",
    "{{ '%.999999999f' % 1 }}",
    "{{ '%999999999d'|format(1) }}",
    "{{ 5|round(-1000000000) }}",
    "{{ [none] * 10000|map('default', 'x' * 100000, true)|join }}",
    "{% for c in 'x' * 1000000 %}{% endfor %}",
    "{% macro m() %}{{ caller() }}{% endmacro %}{% macro c(n) %}{% call m() %}{{ c(n + 1) }}{% endcall %}{% endmacro %}"
    "{{ c(0) }}",
]


def test_no_loader_and_the_file_exists() -> None:
    # the file the battery tries to read is there: refusal is the sandbox's doing, not a missing file
    assert Path("/etc/passwd").read_text(encoding="utf-8")


@pytest.mark.parametrize("body", ESCAPES)
def test_escapes_are_refused_fast_and_leak_nothing(body: str, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET, encoding="utf-8")
    body = body.replace("{secret}", str(secret))
    passwd = Path("/etc/passwd").read_text(encoding="utf-8").splitlines()[0]
    start = time.monotonic()
    code, out = attempt(body)
    assert time.monotonic() - start < 1.0
    assert code in ("template_unsafe", "template_invalid"), (body, code, out)
    assert SECRET not in out
    assert passwd not in out
    assert "__globals__" not in out or "attribute" in out or "not allowed" in out


@pytest.mark.parametrize("body", RESOURCE_ATTACKS)
def test_resource_attacks_stop_within_a_second(body: str) -> None:
    start = time.monotonic()
    code, out = attempt(body)
    elapsed = time.monotonic() - start
    assert elapsed < 1.0, (body, elapsed)
    assert code in ("template_unsafe", "template_invalid"), (body, code, out[:200])


def test_runtime_checks_hold_without_the_static_ones() -> None:
    # names built at run time never reach a static check: the sandbox refuses them while rendering
    for body in (
        "{% set a = '__cla' ~ 'ss__' %}{{ person|attr(a) }}",
        "{% set f = 'form' ~ 'at' %}{{ ('{0}'|attr(f))(person) }}",
        "{% set m = 'lju' ~ 'st' %}{{ (person.name|attr(m))(10**9) }}",
    ):
        with pytest.raises(TemplateUnsafeError) as info:
            render(sms(body), scope(), "en")
        assert info.value.code == "template_unsafe"
        assert info.value.field == "body.en"


def test_data_keys_with_underscores_are_data() -> None:
    assert render(sms("{{ person['_note'] }}"), scope(_note="n"), "en").text == "n"
    assert attempt("{{ person['__x'] }}")[0] == "template_unsafe"
    assert attempt("{{ person['_missing_attr'] }}")[0] == "ok"


def test_views_are_measured() -> None:
    s = scope(blob="x" * 200_000)
    body = "{% set v = person.values() %}{{ [v, v, v, v, v, v, v, v] }}"
    code, message = "ok", ""
    try:
        render(sms(body), s, "en")
    except UserloopError as e:
        code, message = e.code, e.message
    assert code == "template_unsafe", message
    assert "printed value" in message  # measured before printing, not only after


def test_limits_name_the_template_and_line() -> None:
    with pytest.raises(TemplateUnsafeError) as info:
        render(sms("ok\nstill ok\n{{ 'x' * 10**9 }}"), scope(), "en")
    assert info.value.field == "body.en"
    assert "line 3" in info.value.message
    with pytest.raises(TemplateUnsafeError) as info:
        render(sms("{% for i in range(10**9) %}{% endfor %}"), scope(), "en")
    assert "range()" in info.value.message


def test_time_budget_is_enforced_cooperatively() -> None:
    body = "{% for i in range(10000) %}{% for j in range(10) %}{{ i }}{% endfor %}{% endfor %}"
    assert attempt(body)[0] == "template_unsafe"  # too much output
    quiet = "{% for i in range(10000) %}{% for j in range(19) %}{% endfor %}{% endfor %}"
    with pytest.raises(TemplateUnsafeError, match="time budget"):
        render(sms(quiet), scope(), "en", budget_ms=1)
    with pytest.raises(TemplateUnsafeError, match="steps"):
        render(sms(quiet), scope(), "en", budget_ms=60_000)
    # a tenth of it stays inside the step limit (a generous budget: the machine may be busy)
    assert render(sms(quiet.replace("10000", "1000")), scope(), "en", budget_ms=60_000).text == ""


def test_legit_loops_and_sizes_still_work() -> None:
    body = "{% for i in range(10000) %}{% if loop.last %}{{ loop.index }}{% endif %}{% endfor %}|{{ 'ab' * 1000 }}"
    out = render(sms(body), scope(), "en", budget_ms=60_000).text
    assert out == "10000|" + "ab" * 1000
    big = render(sms("{{ 'x' * " + str(MAX_OUTPUT) + " }}"), scope(), "en").text
    assert len(big) == MAX_OUTPUT
    assert attempt("{{ 'x' * " + str(MAX_OUTPUT + 1) + " }}")[0] == "template_unsafe"
    assert render(sms("{{ 2 ** 100 }} {{ '%05.1f|%s' % (3.14159, 'a') }}"), scope(), "en").text == (f"{2**100} 003.1|a")


# -- construction --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "line"),
    [("hello {{ person.name ", 1), ("a\nb\n{% for x in y %}", 3), ("{% if %}", 1), ("{{ x|nosuchfilter }}", 1)],
)
def test_syntax_errors_name_field_and_line(body: str, line: int) -> None:
    with pytest.raises(ValidationError) as info:
        Material(channel="sms", body={"en": "fine", "zh-CN": body})
    assert info.value.code == "template_invalid"
    assert info.value.field == "body.zh-CN"
    if "nosuchfilter" not in body:
        assert f"line {line}" in info.value.message


def test_construction_checks_every_template_and_size() -> None:
    with pytest.raises(ValidationError) as info:
        Material(channel="email", subject={"en": "{{ person. }}"}, body={"en": "x"})
    assert info.value.field == "subject.en"
    with pytest.raises(ValidationError) as info:
        Material(channel="sms", body={"en": "x"}, params={"code": "{% for %}"})
    assert info.value.field == "params.code"
    with pytest.raises(ValidationError) as info:
        Material(channel="sms", body={"en": "x" * (64 * 1024 + 1)})
    assert info.value.code == "template_invalid"
    assert "64" in info.value.message or "65536" in info.value.message
    Material(channel="sms", body={"en": "x" * (64 * 1024)})
    with pytest.raises(ValidationError):
        Material(channel="sms", body={"en": "x"}, params={"bad name": "x"})
    with pytest.raises(ValidationError):
        Material(channel="sms", body={"en": "x"}, html=True)
    with pytest.raises(Exception, match="body"):
        Material(channel="sms", body={})
    with pytest.raises(Exception, match="fr"):
        Material.model_validate({"channel": "sms", "body": {"fr": "x"}})
    with pytest.raises(Exception, match="extra"):
        Material.model_validate({"channel": "sms", "body": {"en": "x"}, "bogus": 1})


# -- rendering -----------------------------------------------------------------------------------------------------


def coupon() -> Material:
    return Material(
        channel="email",
        html=True,
        subject={"zh-CN": "{{ person.name }}，送您一张优惠券", "en": "{{ person.name }}, a coupon for you"},
        body={
            "zh-CN": "<p>{{ person.name }}您好！满{{ benefit.threshold|money }}减{{ benefit.amount|money }}，"
            "券码 {{ benefit.code }}，{{ benefit.valid_until|date }}前有效。</p>"
            '<a href="{{ links.unsubscribe }}">退订</a>',
            "en": "<p>Hi {{ person.name }}! {{ benefit.amount|money }} off orders over {{ benefit.threshold|money }}, "
            "code {{ benefit.code }}, valid until {{ benefit.valid_until|date }}.</p>"
            '<a href="{{ links.unsubscribe }}">Unsubscribe</a>',
        },
    )


def test_chinese_and_english() -> None:
    zh = render(coupon(), scope(**{"$language": "zh-CN", "name": "张三"}), "en")
    assert zh.locale == "zh-CN"
    assert zh.subject == "张三，送您一张优惠券"
    assert zh.text == (
        "<p>张三您好！满¥199.00减¥20.00，券码 SAVE20，2026年12月31日前有效。</p>"
        '<a href="https://u.example/unsub?t=a&amp;s=b">退订</a>'
    )
    en = render(coupon(), scope(**{"$language": "en-US"}), "zh-CN")
    assert en.locale == "en"
    assert en.subject == "Ann, a coupon for you"
    assert en.text.startswith("<p>Hi Ann! CN¥20.00 off orders over CN¥199.00, code SAVE20, valid until Dec 31, 2026.")
    assert en.missing == []
    assert en.warnings == []


def test_autoescape_in_html_email_only() -> None:
    evil = '<script>alert("x")</script>&amp;'
    email = render(coupon(), scope(name=evil), "en")
    assert "<script>" not in email.text
    assert str(escape(evil)) in email.text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&amp;amp;" in email.text
    assert email.subject == f"{evil}, a coupon for you"  # a subject is plain text
    text = render(sms("Hi {{ person.name }} {{ 'a' ~ person.name }}"), scope(name=evil), "en").text
    assert text == f"Hi {evil} a{evil}"
    concat = Material(channel="email", html=True, subject={"en": "s"}, body={"en": "<b>{{ '<i>' ~ person.name }}</b>"})
    assert render(concat, scope(name="<u>"), "en").text == "<b>&lt;i&gt;&lt;u&gt;</b>"


def test_markup_in_the_scope_is_still_escaped() -> None:
    out = render(coupon(), scope(name=Markup("<b>bold</b>")), "en").text
    assert "<b>bold</b>" not in out
    assert "&lt;b&gt;bold&lt;/b&gt;" in out


def test_subject_stays_one_line() -> None:
    out = render(coupon(), scope(name="Ann\r\nBcc: all@example.com"), "en")
    assert out.subject is not None
    assert "\n" not in out.subject
    assert "\r" not in out.subject


def test_locale_choice_and_fallback() -> None:
    assert choose_locale("zh_TW", "en") == "zh-CN"
    assert choose_locale("ZH", "en") == "zh-CN"
    assert choose_locale("en-GB", "zh-CN") == "en"
    assert choose_locale("fr", "en") == "en"
    assert choose_locale("fr", "zh-CN") == "zh-CN"
    assert choose_locale(None, "zh-CN") == "zh-CN"
    assert choose_locale(42, "en") == "en"
    only_zh = Material(channel="push", subject={"zh-CN": "标题"}, body={"zh-CN": "你好 {{ person.name }}"})
    out = render(only_zh, scope(**{"$language": "en"}), "en")
    assert out.locale == "zh-CN"
    assert out.text == "你好 Ann"
    assert any("no en version" in w and "zh-CN" in w for w in out.warnings)
    # the property read is the material's
    custom = Material(channel="sms", body={"en": "en", "zh-CN": "zh"}, locale_property="lang")
    assert render(custom, scope(lang="zh", **{"$language": "en"}), "en").text == "zh"
    assert render(custom, scope(**{"$language": "zh"}), "en").text == "en"
    # the subject follows the body's locale, and falls back on its own
    mixed = Material(channel="email", subject={"en": "Hello"}, body={"zh-CN": "正文", "en": "body"})
    out = render(mixed, scope(**{"$language": "zh-CN"}), "en")
    assert (out.locale, out.subject, out.text) == ("zh-CN", "Hello", "正文")
    assert any("subject" in w for w in out.warnings)


def test_missing_values_render_empty_and_are_reported() -> None:
    body = (
        "Hi {{ person.nickname }}{{ person.nickname }}! {{ tags.gold }}|{{ person.address.city }}|"
        "{{ benefit.nothing * 2 }}|{{ person.gone|default('friend') }}|{% if person.absent %}no{% endif %}|"
        "{{ models.nope|money }}|{% for o in person.orders %}{{ o }}{% endfor %}|{{ person.none|length }}"
    )
    out = render(sms(body), scope(), "en")
    assert out.text == "Hi ! |||friend||||0"
    assert out.missing == [
        "person.nickname",
        "tags.gold",
        "person.address",
        "benefit.nothing",
        "models.nope",
        "person.orders",
    ]
    shown = preview(sms(body), scope(), "en")
    assert shown.text == out.text
    assert any("person.nickname" in w and "未定义" in w for w in shown.warnings)


def test_nested_paths_and_loops() -> None:
    s = scope(orders=[{"sku": "A1", "price": 9.9}, {"sku": "B2"}], address={"city": "杭州"}, **{"$language": "zh"})
    body = "{% for o in person.orders %}{{ o.sku }}:{{ o.price|money }};{% endfor %}{{ person.address.city }}"
    out = render(sms(body), s, "zh-CN")
    assert out.text == "A1:¥9.90;B2:;杭州"
    assert out.missing == ["person.orders.1.price"]


def test_params_for_provider_templates() -> None:
    m = Material(
        channel="sms",
        body={"zh-CN": "【店铺】{{ person.name }}，您的券码 {{ benefit.code }}"},
        params={"name": "{{ person.name }}", "code": "{{ benefit.code }}", "amount": "{{ benefit.amount }}"},
        provider_template="SMS_123456789",
    )
    out = render(m, scope(name="<李四>"), "en")
    assert out.params == {"amount": "20", "code": "SAVE20", "name": "<李四>"}
    assert out.text == "【店铺】<李四>，您的券码 SAVE20"
    assert out.locale == "zh-CN"


def test_money_and_date_filters() -> None:
    body = (
        "{{ 1234567.005|money }} {{ -3|money }} {{ '12.345'|money }} {{ 0|money('USD') }} "
        "{{ benefit.valid_until|date('short') }} {{ benefit.valid_until|date('long') }} "
        "{{ models.at|date }} {{ models.at|date(time=false) }} {{ models.ms|date }} {{ '2026-01-02'|date }}"
    )
    s = scope()
    s.models["at"] = datetime(2026, 3, 4, 6, 5, tzinfo=UTC)  # 14:05 in Shanghai
    s.models["ms"] = 1_767_225_600_000  # 2026-01-01T00:00:00Z
    en = render(sms(body), s, "en").text
    assert en == (
        "CN¥1,234,567.01 -CN¥3.00 CN¥12.35 $0.00 12/31/26 December 31, 2026 Mar 4, 2026, 2:05 PM Mar 4, 2026 "
        "Jan 1, 2026, 8:00 AM Jan 2, 2026"
    )
    s.person["$language"] = "zh-CN"
    zh = render(sms(body), s, "en").text
    assert zh == (
        "¥1,234,567.01 -¥3.00 ¥12.35 US$0.00 2026/12/31 2026年12月31日 2026年3月4日 14:05 2026年3月4日 "
        "2026年1月1日 08:00 2026年1月2日"
    )
    s.timezone = "America/New_York"
    assert render(sms("{{ models.at|date }}"), s, "en").text == "2026年3月4日 01:05"
    odd = render(sms("{{ person.name|money }}|{{ person.name|date }}"), scope(), "en")
    assert odd.text == "Ann|Ann"
    assert len(odd.warnings) == 2
    with pytest.raises(ValidationError) as info:
        render(sms("{{ 1|money('XYZ') }}"), scope(), "en")
    assert info.value.code == "template_invalid"


def test_runtime_errors_are_template_invalid() -> None:
    for body in ("{{ 1 / 0 }}", "{{ 1 + 'a' }}", "{{ person.name() }}", "{{ 1|date('weird') }}"):
        with pytest.raises(ValidationError) as info:
            render(sms(body), scope(), "en")
        assert info.value.code == "template_invalid", body


def test_allowed_methods_and_filters() -> None:
    body = (
        "{{ person.name.upper() }} {{ person.get('name') }} {{ tags.items()|list|length }} "
        "{{ ['b', 'a']|sort|join('-') }} {{ 'a,b'.split(',')|last }} {{ models.clv|round(1) }} "
        "{% for k, v in tags|dictsort %}{{ k }}={{ v }};{% endfor %} {{ journey.name|title }} "
        "{% macro greet(n) %}Hi {{ n }}{% endmacro %}{{ greet(person.name) }} {{ 'x-' ~ person.id }}"
    )
    out = render(sms(body), scope(), "en").text
    assert out == "ANN Ann 2 a-b b 1234.5 city=上海;vip=True; Winback Hi Ann x-7"


def test_rendering_is_fast_once_compiled() -> None:
    m, s = coupon(), scope()
    render(m, s, "en")
    start = time.monotonic()
    for _ in range(200):
        render(m, s, "en")
    assert (time.monotonic() - start) / 200 < 0.02


# -- hypothesis: any profile value renders, escaped in HTML and verbatim in text ----------------------------------

profile_values = st.one_of(
    st.text(max_size=200),
    st.text(alphabet="<>&\"'{}%#/\\ \r\n\t\x00\u2028é中", max_size=60),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.lists(st.text(max_size=10), max_size=5),
    st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3),
)


@given(value=profile_values, lang=st.one_of(st.none(), st.text(max_size=6), st.sampled_from(["zh", "en-US"])))
@example(value="{{ 7 * 7 }}{% include '/etc/passwd' %}", lang="en")
@example(value="<script>alert(1)</script>", lang="zh")
@example(value="\"' onmouseover=alert(1) x='", lang=None)
@settings(max_examples=examples(150))
def test_any_profile_value_renders_and_never_escapes(value: Any, lang: Any) -> None:
    s = scope(name=value, **{"$language": lang})
    s.benefit["amount"] = value
    s.tags["t"] = value
    text_out = render(
        sms("{{ person.name }}|{{ tags.t }}|{{ benefit.amount|money }}|{{ person.name|date }}|{{ 'x' ~ person.name }}"),
        s,
        "zh-CN",
    )
    expected = "" if value is None else str(value)
    assert text_out.text.startswith(f"{expected}|{expected}|")
    if isinstance(value, str):
        assert "49" not in text_out.text or "49" in value  # never evaluated as a template
    html_m = Material(
        channel="email",
        html=True,
        subject={"en": "{{ person.name }}"},
        body={"en": '<p title="{{ person.name }}">{{ person.name }}</p><a href="{{ links.preferences }}">p</a>'},
    )
    out = render(html_m, s, "en").text
    escaped = str(escape(expected))
    assert out.startswith(f'<p title="{escaped}">{escaped}</p>')
    hook = Material(channel="webhook", body={"en": '{"name": {{ person.name|tojson }}, "id": {{ person.id }}}'})
    sent = json.loads(render(hook, s, "en").text)
    assert sent["id"] == 7
    if isinstance(value, float) and value != value:
        assert sent["name"] != sent["name"]
    else:
        assert sent["name"] == value
    finder = _Events()
    finder.feed(out)
    assert [e for e in finder.events if e[0] != "data"] == [
        ("start", "p", (("title", expected),)),
        ("end", "p", ()),
        ("start", "a", (("href", "https://u.example/prefs"),)),
        ("end", "a", ()),
    ]


# -- HTML helpers ------------------------------------------------------------------------------------------------


class _Events(HTMLParser):
    """The tag events of a document, attributes as the parser decodes them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.events: list[tuple[str, str, tuple[tuple[str, str | None], ...]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.events.append(("start", tag, tuple(attrs)))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.events.append(("startend", tag, tuple(attrs)))

    def handle_endtag(self, tag: str) -> None:
        self.events.append(("end", tag, ()))

    def handle_data(self, data: str) -> None:
        self.events.append(("data", data, ()))


def events(doc: str) -> list[tuple[str, str, tuple[tuple[str, str | None], ...]]]:
    parser = _Events()
    parser.feed(doc)
    parser.close()
    return parser.events


TRICKY = (
    "<!DOCTYPE html><html><head><style>a[href^='http://x']{color:red}</style>"
    "<script>var s = '<a href=\"http://in-script.example/\">';</script></head><body>\n"
    '<a class="btn" href="https://shop.example/p?id=1&amp;utm=a" target=_blank>Buy &amp; save</a>\n'
    "<A HREF='http://shop.example/it&#39;s' data-x=\"&quot;q&quot;\">It's</A>\n"
    "<a href=https://bare.example/x>bare</a>\n"
    '<a href="mailto:help@shop.example">mail</a> <a href="#top">top</a> <a href="/rel">rel</a>\n'
    '<a href="https://u.example/unsub?t=a&amp;s=b">退订</a>\n'
    '<a data-no-track href="https://skip.example/">skip</a>\n'
    '<a href="javascript:alert(1)">js</a> <a name="anchor">no href</a> <a href>empty</a>\n'
    '<!-- <a href="http://commented.example/"> --><p>&lt;script&gt; stays &amp; escaped</p>\n'
    '<a\n  title="multi\nline"\n  href="https://multi.example/">multi</a><img src="https://img.example/a.png"/>'
    "</body></html>"
)


def test_track_links_rewrites_only_http_links() -> None:
    seen: list[str] = []

    def wrap(url: str) -> str:
        seen.append(url)
        return "https://t.example/c?u=" + url.replace("&", "%26") + "&sig=x"

    out = track_links(TRICKY, wrap, keep=["https://u.example/unsub?t=a&s=b"])
    assert seen == [
        "https://shop.example/p?id=1&utm=a",
        "http://shop.example/it's",
        "https://bare.example/x",
        "https://multi.example/",
    ]
    assert (
        '<a class="btn" href="https://t.example/c?u=https://shop.example/p?id=1%26utm=a&amp;sig=x" target="_blank">'
        in (out)
    )
    assert 'href="https://t.example/c?u=http://shop.example/it&#x27;s&amp;sig=x" data-x="&quot;q&quot;">' in out
    # untouched: script contents, comments, mailto, anchors, relative, unsubscribe, marked, javascript, no href
    for kept in (
        "<script>var s = '<a href=\"http://in-script.example/\">';</script>",
        '<!-- <a href="http://commented.example/"> -->',
        '<a href="mailto:help@shop.example">',
        '<a href="#top">',
        '<a href="/rel">',
        '<a href="https://u.example/unsub?t=a&amp;s=b">',
        '<a data-no-track href="https://skip.example/">',
        '<a href="javascript:alert(1)">',
        "<a href>empty</a>",
        "<p>&lt;script&gt; stays &amp; escaped</p>",
        "Buy &amp; save",
    ):
        assert kept in out
    # the same document structure, with only the tracked hrefs changed
    before, after = events(TRICKY), events(out)
    assert len(before) == len(after)
    changed = [(b, a) for b, a in zip(before, after, strict=True) if b != a]
    assert len(changed) == 4
    for b, a in changed:
        assert b[0] == a[0] == "start"
        assert b[1] == a[1] == "a"
        assert [n for n, _ in b[2]] == [n for n, _ in a[2]]  # attribute order kept
        assert dict(a[2])["href"] == wrap(str(dict(b[2])["href"]).strip())


def test_track_links_identity_round_trip() -> None:
    out = track_links(TRICKY, lambda url: url)
    assert events(out) == events(TRICKY)
    assert track_links("no links at all & <b>bold</b>", lambda u: "X") == "no links at all & <b>bold</b>"
    assert track_links("", lambda u: "X") == ""


def test_track_links_escapes_the_wrapped_url() -> None:
    out = track_links('<a href="https://a.example/">a</a>', lambda u: 'https://t.example/?u="><script>')
    assert out == '<a href="https://t.example/?u=&quot;&gt;&lt;script&gt;">a</a>'
    assert events(out)[0] == ("start", "a", (("href", 'https://t.example/?u="><script>'),))


def test_add_pixel() -> None:
    doc = "<html><body><p>hi</p></body></html>"
    out = add_pixel(doc, "https://t.example/o?m=1&k=2")
    assert out == (
        '<html><body><p>hi</p><img src="https://t.example/o?m=1&amp;k=2" width="1" height="1" alt="" '
        'style="border:0;width:1px;height:1px" /></body></html>'
    )
    fragment = add_pixel("<p>hi</p>", "https://t.example/o")
    assert fragment.startswith("<p>hi</p><img ")
    nested = add_pixel("<body><script>'</body>'</script><p>x</p></BODY>", "https://t.example/o")
    assert nested.startswith("<body><script>'</body>'</script><p>x</p><img ")
    assert nested.endswith("/></BODY>")


def test_tracking_a_rendered_email() -> None:
    s = scope(name='"><a href="https://evil.example/">x</a>')
    body = render(coupon(), s, "en").text
    tracked = add_pixel(track_links(body, lambda u: "https://t.example/c", keep=[s.links["unsubscribe"]]), "https://p")
    assert "evil.example" not in [dict(e[2]).get("href") for e in events(tracked) if e[1] == "a"]
    assert s.links["unsubscribe"] in [dict(e[2]).get("href") for e in events(tracked) if e[1] == "a"]


@pytest.mark.parametrize(
    "body",
    [
        "{{ person.name|center(1000000000) }}",
        "{{ person.name|indent(1000000000) }}",
        "{{ person.name|wordwrap(1, wrapstring='x' * 1000) }}",
        "{{ range(10)|batch(1000000000, 'x')|list }}",
        "{{ range(10)|slice(1000000000)|list }}",
        "{{ range(10)|random }}",
        "{{ person.name|urlize }}",
        "{{ person|xmlattr }}",
    ],
)
def test_amplifying_filters_are_not_available(body: str) -> None:
    code, message = attempt(body)
    assert code == "template_invalid"
    assert "No filter named" in message


def test_null_values_print_empty() -> None:
    out = render(
        sms("[{{ person.x }}][{{ 'a' ~ person.x }}][{{ person.x|money }}][{{ person.x|date }}]"), scope(x=None)
    )
    assert out.text == "[][a][][]"
    assert out.missing == []
    assert out.warnings == []


def test_concurrent_renders_keep_their_own_state() -> None:
    from concurrent.futures import ThreadPoolExecutor

    m = sms("{{ person.name }}{{ person.get('only_' ~ person.id) }}{{ person['gap_' ~ person.id] }}")

    def one(i: int) -> tuple[str, list[str]]:
        out = render(m, RenderScope(person={"id": i, "name": f"p{i}", "$language": "en"}), "en")
        return out.text, out.missing

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(one, range(64)))
    assert results == [(f"p{i}", [f"person.gap_{i}"]) for i in range(64)]


@pytest.mark.parametrize(
    "body",
    [
        "{{ " + "[" * 5000 + "]" * 5000 + " }}",
        "{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}",
        "{{ " + "-" * 20000 + "1 }}",
        "{{ 1" + " + 1" * 10000 + " }}",
        "{{ 1" + " ~ 1" * 10000 + " }}",
        "{% for i in range(2) %}" * 30 + "x" + "{% endfor %}" * 30,
        "{% if true %}" * 200 + "x" + "{% endif %}" * 200,
    ],
)
def test_deep_or_huge_templates_are_refused_when_made(body: str) -> None:
    start = time.monotonic()
    with pytest.raises(ValidationError) as info:
        sms(body)
    assert time.monotonic() - start < 3.0
    assert info.value.code == "template_invalid"
    assert info.value.field in ("body.en", "body.zh-CN")


@pytest.mark.parametrize(
    "body",
    [
        "{% set s = 'x' * 1000000 %}{{ s|sort|length }}",
        "{% set s = 'x' * 1000000 %}{{ s|unique|list|length }}",
        "{% set s = 'x' * 100000 %}{{ s|map('upper')|join }}",
    ],
)
def test_filters_that_visit_every_item_are_capped(body: str) -> None:
    start = time.monotonic()
    code, message = attempt(body)
    assert time.monotonic() - start < 0.5
    assert code == "template_unsafe"
    assert "items" in message


FRAGMENTS = [
    "{{ ",
    " }}",
    "{% for x in ",
    " %}",
    "{% endfor %}",
    "{% if ",
    "{% endif %}",
    "{% set y = ",
    "{% macro f(a) %}",
    "{% endmacro %}",
    "f(",
    "f(x)",
    "x",
    "y",
    "(",
    ")",
    "[",
    "]",
    ", ",
    " * ",
    " ** ",
    " + ",
    " ~ ",
    " % ",
    "10**9",
    "10000",
    "range(10000)",
    "range(",
    "'x'",
    "'%s%999d'",
    "'{0}'",
    "person",
    "person.name",
    "person.items()",
    "person.l",
    ".",
    "__class__",
    "format",
    "|join",
    "|list",
    "|sort",
    "|map('string')",
    "|replace('', 'yy')",
    "|attr('__class__')",
    "|tojson",
    "|money",
    "|date",
    "|default('d')",
    "loop.index",
    "caller()",
    "self",
    "{% call f(1) %}",
    "{% endcall %}",
    "{% include 'x' %}",
    "{% raw %}",
    "{% endraw %}",
    "\n",
    "<b>",
    "&amp;",
]


@given(parts=st.lists(st.sampled_from(FRAGMENTS), max_size=40))
@settings(max_examples=examples(300))
def test_random_templates_fail_only_as_template_errors(parts: list[str]) -> None:
    body = "".join(parts)
    start = time.monotonic()
    code = "ok"
    try:
        m = Material(channel="email", html=True, subject={"en": "s"}, body={"en": body})
        render(m, scope(l=list(range(100))), "en")
    except (TemplateUnsafeError, ValidationError) as e:
        code = e.code
    assert code in ("ok", "template_unsafe", "template_invalid")
    assert time.monotonic() - start < 1.5
