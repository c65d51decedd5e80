"""
The results table: one row per metric, one column per server, and the two ratios
that say how twistedpypi compares with pypiserver and with bare Twisted.
"""

import datetime
from dataclasses import dataclass, field

import machine

OURS = "twistedpypi"
RATIOS = ("pypiserver", "bare Twisted")


@dataclass(frozen=True)
class Metric:
    """A row, labelled with its unit and, for times, that lower is better."""

    label: str


def number(value: float) -> str:
    """Three significant digits, as integers with thousands separators from 100 up."""
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


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

    def note(self, text: str) -> None:
        """Remember something a reader of the numbers should know."""
        print(f"  note: {text}", flush=True)
        self.notes.append(text)

    def _cell(self, metric: Metric, server: str) -> str:
        value = self.cells.get((metric, server), "–")
        return number(value) if isinstance(value, float) else value

    def _ratio(self, metric: Metric, other: str) -> str:
        ours, theirs = self.cells.get((metric, OURS)), self.cells.get((metric, other))
        if not isinstance(ours, float) or not isinstance(theirs, float) or theirs <= 0:
            return "–"
        ratio = ours / theirs
        return "<0.01×" if ratio < 0.01 else number(ratio) + "×"

    def markdown(self) -> str:
        ratio_columns = [r for r in RATIOS if OURS in self.servers and r in self.servers]
        header = ["metric", *self.servers, *(f"ours / {r}" for r in ratio_columns)]
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for metric in self.metrics:
            if not any((metric, s) in self.cells for s in self.servers):
                continue
            row = [metric.label, *(self._cell(metric, s) for s in self.servers)]
            row += [self._ratio(metric, r) for r in ratio_columns]
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
