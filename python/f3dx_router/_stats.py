"""The shape of ``Router.stats()``: what the router remembers, read-only."""

from __future__ import annotations

from typing import Any, Literal, TypedDict, cast

__all__ = [
    "LatencyMs",
    "QualityKeyStats",
    "ProviderStats",
    "DeploymentStats",
    "HedgeStats",
    "RouterStats",
    "ReadableStats",
    "format_stats",
]


class LatencyMs(TypedDict):
    """Percentiles of the window's successful latencies, in ms (None without samples)."""

    p50: float | None
    #: What ``hedge_delay_ms="auto"`` waits while a call waits on this provider.
    p90: float | None
    p95: float | None
    p99: float | None


class QualityKeyStats(TypedDict):
    """One (tenant, model) of a provider in quality-aware routing."""

    tenant: str
    model: str
    #: Results in the window (checked answers and reported ones).
    samples: int
    #: Passes / samples (None without samples).
    pass_rate: float | None
    #: "ok", "excluded" (skipped for this tenant and model), or "probing"
    #: (the exclusion ended: the next matching call may probe).
    state: Literal["ok", "excluded", "probing"]
    #: Seconds left in the exclusion (None unless excluded).
    until_s: float | None


class ProviderStats(TypedDict):
    """One provider, as of the call to ``stats()``."""

    #: "healthy", "cooling" (Retry-After), "ejected", "half_open" (one probe
    #: may go), or "rate_limited".
    state: Literal["healthy", "cooling", "ejected", "half_open", "rate_limited"]
    #: Seconds left in that state (None when it has no end).
    until_s: float | None
    #: Outcomes in the health window: successes + soft failures.
    requests: int
    successes: int
    soft_failures: int
    #: soft_failures / requests (0.0 without requests).
    error_rate: float
    latency_ms: LatencyMs
    #: Ejections since the router was built.
    ejections: int
    #: Requests and tokens left in the rate budgets (None without a budget).
    rpm_left: float | None
    tpm_left: float | None
    #: Its quality keys with the most results (at most 20).
    quality: list[QualityKeyStats]


class DeploymentStats(ProviderStats):
    """One deployment of a model group (with ``models``): what the router
    remembers of this provider sending this model."""

    #: The provider's name.
    provider: str
    #: The model sent (None when the caller's is passed through).
    model: str | None


class HedgeStats(TypedDict):
    """Hedging across the router's calls."""

    #: Legs started while another leg of the same call was in flight.
    sent: int
    #: Calls won by such a leg.
    won: int
    #: Extra legs not started for want of hedge budget (a call refused one
    #: starts no more extra legs; failovers are never refused).
    skipped_for_budget: int


class _RouterStatsRequired(TypedDict):
    hedges: HedgeStats


class RouterStats(_RouterStatsRequired, total=False):
    """``Router.stats()``: hedging, and per provider name (a router
    without ``models``) or per model group, the deployments of each (a
    router with ``models``): exactly one of ``providers`` and ``models``."""

    providers: dict[str, ProviderStats]
    models: dict[str, list[DeploymentStats]]


# -- reading it -------------------------------------------------------------------

#: The columns of ``format_stats``, in order (with ``models``, ``group``
#: and ``model`` come first, around the provider).
_COLUMNS = ("provider", "state", "calls", "failures", "error", "p50 ms", "p95 ms", "ejections", "budget", "quality")
_TABLE_COLUMNS = ("group", "provider", "model", *_COLUMNS[1:])
#: Right-aligned (numbers).
_NUMERIC = frozenset({"calls", "failures", "error", "p50 ms", "p95 ms", "ejections"})


def _columns(stats: RouterStats) -> tuple[str, ...]:
    return _TABLE_COLUMNS if "models" in stats else _COLUMNS


def _number(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:g}" if abs(x) < 1e6 else f"{x:.0f}"


def _state(p: ProviderStats) -> str:
    until = p["until_s"]
    return p["state"] if until is None else f"{p['state']} ({until:.1f} s)"


def _budget(p: ProviderStats) -> str:
    """What is left of the rate budgets: ``rpm 59.5 tpm 1200``, or ``-``."""
    parts = [f"{name} {_number(left)}" for name, left in (("rpm", p["rpm_left"]), ("tpm", p["tpm_left"])) if left is not None]
    return " ".join(parts) or "-"


def _quality(p: ProviderStats) -> str:
    """Its quality keys: how many, the lowest pass rate, how many excluded."""
    keys = p["quality"]
    if not keys:
        return "-"
    rates = [k["pass_rate"] for k in keys if k["pass_rate"] is not None]
    excluded = sum(k["state"] == "excluded" for k in keys)
    text = f"{len(keys)} key{'s' if len(keys) != 1 else ''}"
    if rates:
        text += f", pass >= {min(rates):.0%}"
    if excluded:
        text += f", {excluded} excluded"
    return text


def _cells(p: ProviderStats) -> tuple[str, ...]:
    latency = p["latency_ms"]
    return (
        _state(p),
        str(p["requests"]),
        str(p["soft_failures"]),
        f"{p['error_rate']:.1%}" if p["requests"] else "-",
        _number(latency["p50"]),
        _number(latency["p95"]),
        str(p["ejections"]),
        _budget(p),
        _quality(p),
    )


def _rows(stats: RouterStats) -> list[tuple[str, ...]]:
    if "models" in stats:
        # One row per deployment, its group named on its first row only.
        rows: list[tuple[str, ...]] = []
        for group, deployments in stats["models"].items():
            for i, d in enumerate(deployments):
                name = group if i == 0 else ""
                rows.append((name, d["provider"], d["model"] or "(caller's)", *_cells(d)))
        return rows
    return [(name, *_cells(p)) for name, p in stats.get("providers", {}).items()]


def _hedges_line(stats: RouterStats) -> str:
    h = stats["hedges"]
    return f"hedges: {h['sent']} sent, {h['won']} won, {h['skipped_for_budget']} skipped for budget"


def format_stats(stats: RouterStats) -> str:
    """``router.stats()`` as a compact text table: one row per provider
    (with ``models``: per deployment, under its group, with the model it
    sends): state, calls and soft failures in the health window, error
    rate, p50/p95 latency, ejections, rate budget left, quality keys; then
    a line on hedging."""
    columns = _columns(stats)
    rows = [columns, *_rows(stats)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(columns))]
    lines = []
    for row in rows:
        cells = [cell.rjust(w) if col in _NUMERIC else cell.ljust(w) for cell, w, col in zip(row, widths, columns)]
        lines.append("  ".join(cells).rstrip())
    lines.append(_hedges_line(stats))
    return "\n".join(lines)


class ReadableStats(dict[str, Any]):
    """What ``Router.stats()`` returns: the ``RouterStats`` dict, which
    ``rich`` (when the application has it) prints as a table. ``rich`` is
    imported only when rich itself asks for the table."""

    __slots__ = ()

    def __rich__(self) -> Any:
        from rich.table import Table  # type: ignore[import-not-found,unused-ignore]  # only rich calls this

        stats = cast(RouterStats, self)
        table = Table(*_columns(stats), title="f3dx_router stats", caption=_hedges_line(stats), caption_justify="left")
        for column in table.columns:
            if str(column.header) in _NUMERIC:
                column.justify = "right"
        for row in _rows(stats):
            table.add_row(*row)
        return table
