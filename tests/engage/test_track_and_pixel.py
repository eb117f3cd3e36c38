"""Link tracking and the open pixel in one scan give the document the two separate scans give, on any mix of
anchors before and after ``</body>``."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from userloop.engage.templates import add_pixel, track_links

PARTS = [
    '<a href="https://shop.example/item?id=1&amp;x=2">buy</a>',
    "<a href='http://b.example/'>b</a>",
    '<a href="mailto:ops@example.com">mail</a>',
    '<a data-no-track href="https://keep.example/">keep</a>',
    "<p>文字 text</p>",
    "</body>",
    "<body>",
    "<br/>",
    '<a href="https://unsub.example/u">unsubscribe</a>',
]


@given(st.lists(st.sampled_from(PARTS), max_size=12))
def test_one_scan_equals_two(parts: list[str]) -> None:
    html = "".join(parts)

    def wrap(url: str) -> str:
        return f"https://t.example/c/{len(url)}?u=" + url.replace("&", "%26")

    keep = ["https://unsub.example/u"]
    once = track_links(html, wrap, keep=keep, pixel_url="https://t.example/o/1?a=1&b=2")
    twice = add_pixel(track_links(html, wrap, keep=keep), "https://t.example/o/1?a=1&b=2")
    assert once == twice
