"""The SVG charts' geometry: values scale to the axis, ticks are whole and distinct."""

import pytest

from invoices.charts import HEIGHT, Point, bar_chart, line_chart, nice_ceiling


@pytest.mark.parametrize(
    ("value", "top"), [(0, 1), (1, 1), (3, 5), (7, 10), (11, 20), (4_999, 5_000), (50_001, 100_000)]
)
def test_the_axis_tops_at_a_round_number_at_or_above_the_largest_value(value, top):
    assert nice_ceiling(value) == top


def test_bars_are_as_tall_as_their_value_on_one_scale():
    chart = bar_chart(
        "Paid", [Point("Primary", 10, "10"), Point("Backup 1", 5, "5"), Point("Backup 2", 0, "0")]
    )
    heights = [bar.height for bar in chart.bars]
    assert heights[0] == pytest.approx(2 * heights[1]) and heights[2] == 0
    assert all(bar.y + bar.height == pytest.approx(HEIGHT - 40) for bar in chart.bars)
    # Bars do not overlap, left to right in the order given.
    assert all(a.x + a.width < b.x for a, b in zip(chart.bars, chart.bars[1:], strict=False))


def test_ticks_are_whole_and_distinct_even_for_small_counts():
    chart = bar_chart("Paid", [Point("Primary", 1, "1")])
    assert [tick.shown for tick in chart.ticks] == ["0", "1"]
    chart = bar_chart("Paid", [Point("Primary", 2, "2")])
    assert [tick.shown for tick in chart.ticks] == ["0", "1", "2"]


def test_a_line_passes_through_every_point_and_labels_at_most_a_few():
    points = [Point(f"w{i}", i * 100, str(i)) for i in range(20)]
    chart = line_chart("Recovered", points, max_labels=6)
    assert len(chart.line.split()) == 20
    assert 1 < len(chart.labels) <= 6
    ys = [y for _x, y, _point in chart.dots]
    assert ys == sorted(ys, reverse=True)  # rising values climb the chart
