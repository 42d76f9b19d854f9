"""Charts drawn on the server as inline SVG: no script, no library, nothing from a CDN, so
the console draws them offline and a browser test can read each bar's count."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

# (key, label, colour) of each stacked series, bottom first.
Series = Sequence[tuple[str, str, str]]
OUTCOME_SERIES: Series = (
    ("succeeded", "succeeded", "#2e7d32"),
    ("retried", "retried", "#f9a825"),
    ("failed", "failed", "#c62828"),
    ("dead_lettered", "dead-lettered", "#4a148c"),
)


def stacked_bars(
    buckets: Sequence[tuple[str, dict[str, int]]],
    series: Series,
    *,
    testid: str,
    width: int = 720,
    height: int = 110,
) -> SafeString:
    """One bar per bucket, its series stacked; a legend with each series' total."""
    tallest = max((sum(counts.get(k, 0) for k, _, _ in series) for _, counts in buckets), default=0)
    scale = height / tallest if tallest else 0
    slot = width / max(1, len(buckets))
    rects = []
    for index, (label, counts) in enumerate(buckets):
        top: float = height
        for key, name, colour in series:
            count = counts.get(key, 0)
            if not count:
                continue
            bar = max(1.0, count * scale)
            top -= bar
            rects.append(
                (
                    f"{index * slot + 0.5:.1f}",
                    f"{top:.1f}",
                    f"{max(1.0, slot - 1):.1f}",
                    f"{bar:.1f}",
                    colour,
                    key,
                    count,
                    f"{label}: {count} {name}",
                )
            )
    bars = format_html_join(
        "",
        '<rect x="{}" y="{}" width="{}" height="{}" fill="{}" data-series="{}" '
        'data-count="{}"><title>{}</title></rect>',
        rects,
    )
    totals = format_html_join(
        " · ",
        '<span style="color:{}">■</span> {} <strong data-testid="{}-total-{}">{}</strong>',
        (
            (colour, name, testid, key, sum(c.get(key, 0) for _, c in buckets))
            for key, name, colour in series
        ),
    )
    first = buckets[0][0] if buckets else ""
    last = buckets[-1][0] if buckets else ""
    # The viewBox scales the drawing to the width it is given: never wider than its column
    # (a phone, a narrow window, a table cell), never stretched past its drawn width.
    return format_html(
        '<figure data-testid="{}" style="margin:0 0 1em 0;max-width:{}px">'
        '<svg viewBox="0 0 {} {}" role="img" '
        'style="display:block;width:100%;height:auto;background:#fafafa;border:1px solid #ddd">'
        "{}</svg><figcaption>{} to {}: {}</figcaption></figure>",
        testid,
        width,
        width,
        height,
        bars,
        first,
        last,
        totals,
    )


def line(
    points: Sequence[tuple[datetime, int]], *, testid: str, width: int = 240, height: int = 40
) -> SafeString:
    """A sparkline of a count over time, with its latest value."""
    if not points:
        return format_html('<span data-testid="{}">no samples yet</span>', testid)
    highest = max(value for _, value in points) or 1
    step = width / max(1, len(points) - 1)
    coordinates = " ".join(
        f"{index * step:.1f},{height - 2 - value * (height - 4) / highest:.1f}"
        for index, (_, value) in enumerate(points)
    )
    return format_html(
        '<span data-testid="{}" data-latest="{}" style="display:inline-flex;align-items:center;'
        'gap:.4em;width:100%;max-width:{}px">'
        '<svg viewBox="0 0 {} {}" preserveAspectRatio="none" role="img" '
        'style="flex:1 1 auto;min-width:60px;height:{}px">'
        '<polyline points="{}" fill="none" stroke="#417690" stroke-width="1.5" '
        'vector-effect="non-scaling-stroke"/>'
        "<title>{} samples, latest {}</title></svg> {}</span>",
        testid,
        points[-1][1],
        width,
        width,
        height,
        height,
        coordinates,
        len(points),
        points[-1][1],
        points[-1][1],
    )
