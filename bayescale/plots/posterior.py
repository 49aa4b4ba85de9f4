"""Figures of the posterior itself: what the data taught, correlations, and MCMC checks.

Prior densities come from the fit's own :class:`~bayescale.laws.priors.Prior` objects (as
numpyro distributions), on the scale the prior was placed: natural for ``E`` and the
exponents, the sampled log scale for coefficients (``log_N_term``), and every panel says
which. Trace and rank plots are ArviZ's (``plot_trace_dist``, ``plot_rank``).
"""

from __future__ import annotations

from functools import partial

import numpy as np

from .style import format_count, format_flops, group_colors, new_figure, styled, thin

__all__ = ["plot_pair", "plot_prior_posterior", "plot_rank", "plot_trace"]

_NEUTRAL = "#333333"


# --------------------------------------------------------------------------- prior vs posterior


def prior_sites(fit) -> list[tuple[str, str]]:
    """``(posterior site, prior name)`` pairs in law order, then noise and downstream sites.

    A partially pooled exponent ``alpha`` puts its prior on the population mean
    ``alpha_mu`` and a half-normal on the spread ``alpha_tau``.
    """
    model = fit.model
    names = list(model.law.parameter_names)
    if fit.spec.downstream:
        names += ["eps", "k", "gamma"]
    names += list(model.noise_sites)
    out = []
    for name in names:
        if name not in model.priors:
            continue
        if model.is_hierarchical(name):
            out.append((f"{name}_mu", name))
            if f"{name}_tau" in model.priors:
                out.append((f"{name}_tau", f"{name}_tau"))
        elif name in fit.samples:
            out.append((name, name))
    return out


def prior_frozen(prior):
    """The scipy equivalent of a :class:`~bayescale.laws.priors.Prior` (same parameterisation).

    Used for the prior's range and variance (fast, exact); the plotted density itself
    is numpyro's, the distribution that was sampled.

    Example:
        >>> from bayescale.laws.priors import parse_prior
        >>> float(prior_frozen(parse_prior("Gamma(concentration=2, rate=0.1)")).mean())
        20.0
    """
    from scipy import stats

    h, f = prior.params, prior.family
    if f == "Normal":
        return stats.norm(h["mu"], h["sigma"])
    if f == "HalfNormal":
        return stats.halfnorm(scale=h["sigma"])
    if f == "LogNormal":
        return stats.lognorm(h["sigma"], scale=np.exp(h["mu"]))
    if f == "TruncatedNormal":
        a, b = (h["low"] - h["mu"]) / h["sigma"], (h["high"] - h["mu"]) / h["sigma"]
        return stats.truncnorm(a, b, loc=h["mu"], scale=h["sigma"])
    if f == "Uniform":
        return stats.uniform(h["low"], h["high"] - h["low"])
    if f == "Exponential":
        return stats.expon(scale=1.0 / h["rate"])
    if f == "Gamma":
        return stats.gamma(h["concentration"], loc=h["loc"], scale=1.0 / h["rate"])
    if f == "HalfCauchy":
        return stats.halfcauchy(scale=h["scale"])
    if f == "StudentT":
        return stats.t(h["df"], h["mu"], h["sigma"])
    if f == "Beta":
        return stats.beta(h["alpha"], h["beta"])
    raise ValueError(f"no scipy equivalent for prior family {f!r}")  # pragma: no cover


def prior_density(prior, grid: np.ndarray) -> np.ndarray:
    """numpyro density of ``prior`` on ``grid`` (zero outside the support).

    One jitted program per prior structure (:meth:`~bayescale.laws.priors.Prior.static_key`)
    and grid shape, with the hyper-parameters as arguments: evaluated op by op, the seven
    priors of a Chinchilla report compiled 66 small XLA programs (~2 s of ``bayescale
    report``).
    """
    import jax

    grid = np.asarray(grid, np.float64)
    key = (prior.static_key(), grid.shape)
    density = _DENSITIES.get(key)
    if density is None:
        density = _DENSITIES[key] = jax.jit(partial(_density, prior))
    hyper = {k: np.float64(v) for k, v in prior.hyper().items()}
    # outside the support log_prob is undefined: the median is evaluated there instead
    median = np.float64(prior_frozen(prior).median())
    return np.asarray(density(hyper, grid, median))


_DENSITIES: dict = {}


def _density(prior, hyper, grid, fallback):
    """``prior``'s density on ``grid`` (its structure from ``prior``, numbers from ``hyper``)."""
    import jax.numpy as jnp

    d = prior.distribution(hyper)
    inside = d.support.check(grid)
    out = jnp.exp(d.log_prob(jnp.where(inside, grid, fallback)))
    return jnp.where(inside & jnp.isfinite(out), out, 0.0)


def _reference_note(fit, doc: str) -> str:
    """``N_ref = 871M`` for each reference size a sampled-scale parameter's doc mentions."""
    symbols = {"params": "N", "tokens": "D", "compute": "C"}
    parts = []
    for name, value in fit.model.log_ref.items():
        symbol = symbols.get(name, name)
        if value and (f"{symbol}_ref" in doc or "x_ref" in doc):
            fmt = format_flops if name == "compute" else format_count
            parts.append(f"{symbol}_ref\u00a0=\u00a0{fmt(float(np.exp(value)))}")  # no wrap
    return ", ".join(parts)


def _wrap(text: str, width: int = 44) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width, break_long_words=False))


@styled
def plot_prior_posterior(fit, *, var_names=None, bins: int = 40, ax=None):
    """Marginal posterior of every sampled parameter with its prior overlaid.

    Panels on the sampled scale (coefficients such as ``log_N_term``, the log of the
    ``A`` term at the reference size) say so in their axis label. The title gives the
    posterior contraction ``1 - var(posterior) / var(prior)``: near 1 the data decided,
    near 0 the prior did.

    Args:
        fit: a :class:`~bayescale.posterior.Fit`.
        var_names: sites to show (default all, see :func:`prior_sites`).
        bins: histogram bins of the posterior.
        ax: a sequence of Axes, one per site (default: a new figure).

    Returns:
        The Figure.

    Example:
        >>> fig = plot_prior_posterior(fit)  # doctest: +SKIP
    """
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.ticker import MaxNLocator

    sites = prior_sites(fit)
    if var_names is not None:
        known = {s for s, _ in sites}
        wanted = [str(v) for v in np.atleast_1d(var_names)]
        bad = [v for v in wanted if v not in known]
        if bad:
            raise ValueError(
                f"var_names has {bad[0]!r}, which has no prior; sites with priors: {', '.join(known)}"
            )
        sites = [s for s in sites if s[0] in wanted]
    if ax is None:
        fig, axes = new_figure(len(sites), 3, (3.0, 2.2))
    else:
        axes = list(np.atleast_1d(ax))
        if len(axes) != len(sites):
            raise ValueError(f"ax must hold {len(sites)} Axes (one per site) but got {len(axes)}")
        fig = axes[0].figure
    colors = group_colors(fit)
    reported = fit.reported()
    docs = {p.name: p.doc for p in fit.law.parameters}
    for panel, (site, prior_name) in zip(axes, sites, strict=True):
        prior = fit.model.priors[prior_name]
        frozen = prior_frozen(prior)
        draws = fit.flat(site)
        draws = draws[:, None] if draws.ndim == 1 else draws
        lo, hi = np.quantile(draws, [0.001, 0.999])
        # the whole prior (central 99%) and the posterior: where the data moved it, how far
        plo, phi = frozen.ppf([0.005, 0.995])
        xlo, xhi = min(lo, plo), max(hi, phi)
        pad = 0.03 * (xhi - xlo)
        grid = np.linspace(xlo - pad, xhi + pad, 600)
        density = prior_density(prior, grid)
        panel.fill_between(grid, density, color="0.9", lw=0)
        panel.plot(grid, density, color="black", ls="--", lw=1.0)
        panel.set_ylim(0, max(density.max(), 1e-300) * 1.08)
        # the posterior on its own (twin) scale: a narrow posterior would dwarf the prior
        post = panel.twinx()
        edges = np.linspace(lo, hi, bins + 1) if hi > lo else bins
        grouped = draws.shape[1] > 1
        for g in range(draws.shape[1]):
            if grouped or not fit.model.grouped:
                c = colors[fit.group_names[g]]
            else:  # shared by the groups of a grouped fit: neutral, as in every figure
                c = _NEUTRAL
            post.hist(
                draws[:, g], bins=edges, density=True, histtype="stepfilled", alpha=0.4, color=c
            )
            post.hist(draws[:, g], bins=edges, density=True, histtype="step", color=c, lw=0.8)
        post.set_ylim(bottom=0)
        for a in (panel, post):
            a.set_yticks([])
            a.grid(False)
            for side in ("left", "right", "top"):
                a.spines[side].set_visible(False)
        panel.set_xlim(grid[0], grid[-1])
        variance = float(frozen.var())
        contraction = 1.0 - np.var(draws, axis=0).max() / variance if variance > 0 else np.nan
        panel.set_title(site, loc="left", fontweight="bold")
        panel.set_title(f"contraction {contraction:.2f}", loc="right", fontsize=7)
        if site in reported or site.endswith(("_mu", "_tau")):
            label = _wrap(f"prior {prior}")
        else:
            doc = docs.get(site, "")
            note = _reference_note(fit, doc)
            scale = f"sampled scale: {doc}" + (f", {note}" if note else "")
            label = _wrap(scale) + "\n" + _wrap(f"prior {prior}")
        panel.set_xlabel(label, fontsize=7)
        panel.xaxis.set_major_locator(MaxNLocator(5))
    handles = [Line2D([], [], color="black", ls="--", label="prior (scaled to its peak)")]
    if fit.model.grouped:
        handles += [
            Patch(color=colors[g], alpha=0.5, label=f"posterior, {g}") for g in fit.group_names
        ]
        handles.append(Patch(color=_NEUTRAL, alpha=0.5, label="posterior, shared"))
    else:
        handles.append(
            Patch(
                color=colors[fit.group_names[0]], alpha=0.5, label="posterior (scaled to its peak)"
            )
        )
    if ax is None:
        fig.legend(handles=handles, loc="outside lower center", ncols=len(handles))
    return fig


# --------------------------------------------------------------------------- pair


def default_pair_names(fit) -> list[str]:
    """The floor, the first coefficient and the first exponent: ``E, A, alpha`` for Chinchilla."""
    law = fit.law
    roles = {p.name: p.role for p in law.parameters}
    reported = list(law.reported_names)
    floor = [n for n in reported if roles.get(n) == "floor"][:1]
    coefficient = [n for n in reported if n not in roles][:1]
    exponent = [n for n in reported if roles.get(n) == "exponent"][:1]
    names = floor + coefficient + exponent
    return names if len(names) >= 2 else reported[:3]


@styled
def plot_pair(fit, var_names=None, *, max_points: int = 800, ax=None):
    """Corner plot of posterior draws: pairwise scatter below, marginals on the diagonal.

    Grouped parameters are drawn per group in the group colours; each off-diagonal
    title gives the posterior correlation (per group, in group order). Strongly skewed
    positive parameters get a log axis and their correlation is computed in logs.

    Args:
        fit: a :class:`~bayescale.posterior.Fit`.
        var_names: reported parameter names (default ``E, A, alpha`` or the law's
            equivalent, e.g. ``E, A, eta`` for gadre2024).
        max_points: draws shown per group (a fixed random subset).
        ax: a square array of Axes (default: a new figure).

    Returns:
        The Figure.

    Example:
        >>> fig = plot_pair(fit, var_names=("E", "A", "alpha"))  # doctest: +SKIP
    """
    from matplotlib.ticker import MaxNLocator

    reported = fit.reported()
    names = default_pair_names(fit) if var_names is None else [str(v) for v in var_names]
    bad = [n for n in names if n not in reported]
    if bad:
        raise ValueError(
            f"var_names has {bad[0]!r}, not a parameter of this fit; parameters: {', '.join(reported)}"
        )
    if len(names) < 2:
        raise ValueError(f"var_names needs at least 2 parameters but got {names}")
    n = len(names)
    if ax is None:
        import matplotlib.pyplot as plt

        fig, grid = plt.subplots(n, n, figsize=(1.9 * n + 0.6, 1.9 * n + 0.3), layout="constrained")
    else:
        grid = np.asarray(ax)
        if grid.shape != (n, n):
            raise ValueError(f"ax must be a {n}x{n} array of Axes but got shape {grid.shape}")
        fig = grid[0, 0].figure
    colors = group_colors(fit)
    # an ungrouped fit keeps its one colour; shared parameters of a grouped fit are neutral
    shared_color = _NEUTRAL if fit.model.grouped else colors[fit.group_names[0]]
    n_groups = fit.model.n_groups
    draws = {}
    for name in names:
        v = reported[name]
        v = v.reshape(-1, v.shape[-1]) if v.ndim == 3 else v.reshape(-1, 1)
        draws[name] = v
    keep = thin(next(iter(draws.values())).shape[0], max_points)
    logs = {
        k: bool(np.all(v > 0) and np.quantile(v, 0.99) / np.quantile(v, 0.01) > 10)
        for k, v in draws.items()
    }

    def series(name):  # per group (or one shared) column of draws
        v = draws[name]
        return [v[:, min(g, v.shape[1] - 1)] for g in range(n_groups)], v.shape[1] > 1

    for i, yname in enumerate(names):
        for j, xname in enumerate(names):
            panel = grid[i, j]
            if j > i:
                panel.remove()
                continue
            xs, xg = series(xname)
            if i == j:
                for g, col in enumerate(xs if xg else xs[:1]):
                    c = colors[fit.group_names[g]] if xg else shared_color
                    data = np.log10(col) if logs[xname] else col
                    panel.hist(data, bins=30, histtype="step", color=c, density=True)
                panel.set_yticks([])
                panel.spines["left"].set_visible(False)
                panel.grid(False)
            else:
                ys, yg = series(yname)
                per_group = xg or yg
                rhos = []
                for g in range(n_groups if per_group else 1):
                    c = colors[fit.group_names[g]] if per_group else shared_color
                    xv = np.log10(xs[g]) if logs[xname] else xs[g]
                    yv = np.log10(ys[g]) if logs[yname] else ys[g]
                    panel.scatter(
                        xv[keep], yv[keep], s=2, alpha=0.3, color=c, lw=0, rasterized=True
                    )
                    rhos.append(np.corrcoef(xv, yv)[0, 1])
                panel.set_title("ρ = " + " / ".join(f"{r:+.2f}" for r in rhos), fontsize=7)
                if j == 0:
                    panel.set_ylabel(f"log10 {yname}" if logs[yname] else yname)
            panel.xaxis.set_major_locator(MaxNLocator(3))
            if i != j:
                panel.yaxis.set_major_locator(MaxNLocator(3))
            if i == n - 1:
                panel.set_xlabel(f"log10 {xname}" if logs[xname] else xname)
                panel.tick_params(axis="x", labelrotation=30)
            else:
                panel.tick_params(axis="x", labelbottom=False)
            if j > 0 and i != j:
                panel.tick_params(axis="y", labelleft=False)
    for i in range(1, n):  # share axes by variable; the diagonal keeps its own y (density)
        for j in range(i):
            grid[i, j].sharex(grid[j, j])
            if j > 0:
                grid[i, j].sharey(grid[i, 0])
    if fit.model.grouped:
        from matplotlib.lines import Line2D

        handles = [
            Line2D([], [], color=colors[g], marker="o", ls="none", ms=4, label=g)
            for g in fit.group_names
        ]
        if any(reported[k].ndim == 2 for k in names):
            handles.append(
                Line2D([], [], color=_NEUTRAL, marker="o", ls="none", ms=4, label="shared")
            )
        fig.legend(handles=handles, loc="outside upper right")
    return fig


# --------------------------------------------------------------------------- arviz


def _labeller():
    from arviz_base.labels import BaseLabeller

    class FlatLabeller(BaseLabeller):
        """``E[rpj]`` on one line, as in summaries and JSON."""

        def make_label_vert(self, var_name, sel, isel):
            return self.make_label_flat(var_name, sel, isel)

    return FlatLabeller()


def posterior_tree(fit):
    """A light DataTree of the reported posterior only (no log-likelihood to compute)."""
    import arviz as az

    reported = fit.reported()
    dims = {k: ["group"] for k, v in reported.items() if v.ndim == 3}
    return az.from_dict({"posterior": reported}, dims=dims, coords={"group": list(fit.group_names)})


def _figure_of(collection):
    return collection.viz["figure"].item()


@styled
def plot_trace(fit, var_names=None, *, figsize=None):
    """Trace and marginal density per chain (ArviZ ``plot_trace_dist``), groups in their colours.

    ArviZ lays out its own figure, so there is no ``ax`` argument.

    Returns:
        The matplotlib Figure.

    Example:
        >>> fig = plot_trace(fit, var_names=["E", "alpha"])  # doctest: +SKIP
    """
    import arviz as az
    from matplotlib.lines import Line2D

    tree = posterior_tree(fit)
    colors = group_colors(fit)
    if figsize is None:  # one row per parameter, page width
        rows = len(tree["posterior"].data_vars) if var_names is None else len(list(var_names))
        figsize = (9.0, 0.4 + 1.35 * rows)
    kwargs = {"figure_kwargs": {"layout": "constrained", "figsize": figsize}}
    if fit.model.grouped:
        # the first colour goes to variables without a group dimension
        kwargs.update(aes={"color": ["group"]}, color=[_NEUTRAL, *colors.values()])
    else:  # one colour, the fit's, for every variable (chains differ by line style)
        n_vars = len(tree["posterior"].data_vars)
        kwargs.update(aes={"color": ["__variable__"]}, color=[colors["all"]] * (n_vars + 2))
    pc = az.plot_trace_dist(
        tree,
        var_names=None if var_names is None else list(var_names),
        backend="matplotlib",
        labeller=_labeller(),
        **kwargs,
    )
    fig = _figure_of(pc)
    for axes in fig.axes:  # thousands of points per line: keep the PDF light
        for line in axes.lines:
            if len(line.get_xdata()) > 500:
                line.set_rasterized(True)
    if fit.model.grouped:
        handles = [Line2D([], [], color=c, label=g) for g, c in colors.items()]
        handles.append(Line2D([], [], color=_NEUTRAL, label="shared"))
        fig.legend(handles=handles, loc="outside right upper")
    return fig


@styled
def plot_rank(fit, var_names=None, *, figsize=None):
    """Rank ECDF plot per parameter and chain (ArviZ ``plot_rank``): flat lines inside the
    envelope mean the chains agree.

    Returns:
        The matplotlib Figure.

    Example:
        >>> fig = plot_rank(fit)  # doctest: +SKIP
    """
    import arviz as az

    tree = posterior_tree(fit)
    if figsize is None:  # ArviZ's default is 4 wide panels per row: too wide for a page
        names = tree["posterior"].data_vars if var_names is None else list(var_names)
        n = sum(int(np.prod(tree["posterior"][v].shape[2:])) for v in names)
        cols = min(4, n)
        figsize = (2.6 * cols, 1.9 * -(-n // cols))
    kwargs = {"figure_kwargs": {"layout": "constrained", "figsize": figsize}}
    pc = az.plot_rank(
        tree,
        var_names=None if var_names is None else list(var_names),
        backend="matplotlib",
        labeller=_labeller(),
        **kwargs,
    )
    return _figure_of(pc)
