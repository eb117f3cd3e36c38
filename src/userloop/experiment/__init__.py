"""Experiments: control groups, effect evaluation before launch and effect regression after it (issue 15).

:mod:`userloop.experiment.stats` holds the statistics, read from per-arm sufficient statistics.
"""

__all__: list[str] = []
