"""
Reading C{/metrics}' Prometheus text in tests.
"""


def parse_metrics(text: str) -> dict[str, float]:
    """Each sample's name with its labels, and its value."""
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values
