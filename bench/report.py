"""
The results table: one row per metric, one column per server, the two ratios that
say how twistedpypi compares with pypiserver and with bare Twisted, and, where the
issue sets one, twistedpypi's target and whether this run met it.
"""

import datetime
from dataclasses import dataclass, field

import machine

OURS = "twistedpypi"
BARE = "bare Twisted"
RATIOS = ("pypiserver", BARE)


@dataclass(frozen=True)
class Target:
    """
    What twistedpypi's cell of a row should be.

    @ivar text: the target as the table shows it.
    @ivar least: met when ours is at least this (times C{relative_to}'s figure).
    @ivar most: met when ours is at most this (times C{relative_to}'s figure).
    @ivar relative_to: a row whose twistedpypi figure the bounds multiply; the
        verdict then shows the measured ratio.
    @ivar or_bare: also met when ours is at least this multiple of bare Twisted's
        figure on the same row, measured in the same run.
    """

    text: str
    least: float | None = None
    most: float | None = None
    relative_to: "Metric | None" = None
    or_bare: float | None = None


@dataclass(frozen=True)
class Metric:
    """A row, labelled with its unit and, for times, that lower is better."""

    label: str
    target: Target | None = field(default=None, compare=False)


def number(value: float) -> str:
    """Three significant digits, as integers with thousands separators from 100 up."""
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def _times(ratio: float, line: float | None = None) -> str:
    """
    A ratio, with a digit more where three would round it onto C{line}, the
    target's bound (0.8999 shows as 0.8999×, not as 0.9×, next to a "no").
    """
    if ratio < 0.01:
        return "<0.01×"
    if line is not None and ratio != line and number(ratio) == number(line):
        return f"{ratio:.4g}×"
    return number(ratio) + "×"


@dataclass
class Table:
    """
    Cells keyed by metric and server. A cell is a number, or text saying why there
    is none ("n/a", "failed").
    """

    metrics: list[Metric]
    servers: list[str]
    cells: dict[tuple[Metric, str], float | str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def put(self, metric: Metric, server: str, value: float | str) -> None:
        self.cells[metric, server] = value

    def get(self, metric: Metric, server: str) -> float | None:
        """The number in a cell, or None where there is none."""
        value = self.cells.get((metric, server))
        return value if isinstance(value, float) else None

    def note(self, text: str) -> None:
        """Remember something a reader of the numbers should know."""
        print(f"  note: {text}", flush=True)
        self.notes.append(text)

    def _cell(self, metric: Metric, server: str) -> str:
        value = self.cells.get((metric, server), "–")
        return number(value) if isinstance(value, float) else value

    def _ratio(self, metric: Metric, other: str) -> str:
        ours, theirs = self.get(metric, OURS), self.get(metric, other)
        if ours is None or theirs is None or theirs <= 0:
            return "–"
        return _times(ours / theirs)

    def verdict(self, metric: Metric) -> str:
        """
        "yes" or "no" for twistedpypi's cell against the row's target, with the
        ratio it was judged on where the target is relative; "–" without a figure,
        nothing for a row without a target.
        """
        target, ours = metric.target, self.get(metric, OURS)
        if target is None:
            return ""
        if ours is None:
            return "–"
        value, shown = ours, ""
        if target.relative_to is not None:
            base = self.get(target.relative_to, OURS)
            if base is None or base <= 0:
                return "–"
            value = ours / base
            shown = f" ({_times(value, target.least if target.least is not None else target.most)})"
        met = (target.least is None or value >= target.least) and (target.most is None or value <= target.most)
        bare = self.get(metric, BARE)
        if not met and target.or_bare is not None and bare:
            met = ours >= target.or_bare * bare
            shown = f" ({_times(ours / bare, target.or_bare)} bare)"
        return ("yes" if met else "no") + shown

    def markdown(self) -> str:
        ratio_columns = [r for r in RATIOS if OURS in self.servers and r in self.servers]
        targets = OURS in self.servers and any(m.target for m in self.metrics)
        header = ["metric", *self.servers, *(f"ours / {r}" for r in ratio_columns)]
        header += ["target (ours)", "met?"] if targets else []
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for metric in self.metrics:
            if not any((metric, s) in self.cells for s in self.servers):
                continue
            row = [metric.label, *(self._cell(metric, s) for s in self.servers)]
            row += [self._ratio(metric, r) for r in ratio_columns]
            if targets:
                row += [metric.target.text if metric.target else "", self.verdict(metric)]
            lines.append("| " + " | ".join(row) + " |")
        return "\n".join(lines) + "\n"


def document(table: Table, command: str, versions: dict[str, str], method: str) -> str:
    """The whole results.md: where and how the numbers were made, the table, the notes."""
    parts = [
        "# twistedpypi benchmark\n",
        f"- date: {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}",
        f"- machine: {machine.describe()}",
        f"- command: `{command}`",
        "- versions: " + "; ".join(f"{k} {v}" for k, v in versions.items()),
        "",
        method,
        "",
        table.markdown(),
    ]
    if table.notes:
        parts += ["Notes:", "", *(f"- {n}" for n in table.notes), ""]
    return "\n".join(parts)
