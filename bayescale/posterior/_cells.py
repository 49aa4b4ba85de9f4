r"""Cells and the table renderer of :mod:`bayescale.posterior.tables`.

Numbers carry as many digits as their interval resolves; names and text are escaped for
LaTeX; :func:`_render` lays out one table as Markdown, LaTeX (booktabs) or HTML.

Example:
    >>> format_estimate(1.80612, 1.77301, 1.83698)
    ('1.806', '1.773', '1.837')
    >>> latex_name("alpha")
    '$\\alpha$'
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

FORMATS = ("markdown", "latex", "html")
PARETO_K_MAX = 0.7
LATEX_PREAMBLE = r"% needs \usepackage{booktabs} and \usepackage{siunitx}"


def _check_format(format: str) -> str:
    if format not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)} but got {format!r}")
    return format


# --------------------------------------------------------------------------- numbers


def _sci(x: float, sig: int) -> str:
    mantissa, exponent = f"{x:.{sig - 1}e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def format_estimate(median: float, lower: float, upper: float) -> tuple[str, str, str]:
    """Median and interval with the digits the interval resolves (two in its width).

    Plain decimals for magnitudes in [1e-3, 1e5), scientific otherwise.

    Example:
        >>> format_estimate(447.2, 329.4, 620.8)
        ('447', '329', '621')
        >>> format_estimate(0.00369, 0.00312, 0.00433)
        ('0.0037', '0.0031', '0.0043')
    """
    values = [float(median), float(lower), float(upper)]
    if not all(math.isfinite(v) for v in values):
        return tuple("nan" if not math.isfinite(v) else f"{v:.4g}" for v in values)
    scale = max(abs(v) for v in values)
    width = abs(values[2] - values[1])
    if scale == 0:
        return ("0", "0", "0")
    width_exp = math.floor(math.log10(width)) if width > 0 else math.floor(math.log10(scale)) - 3
    if 1e-3 <= scale < 1e5:
        decimals = min(8, max(0, 1 - width_exp))
        return tuple(f"{v:.{decimals}f}" for v in values)
    # the same absolute resolution as the plain case (a tenth of the width's leading digit)
    return tuple(
        _sci(v, min(6, max(1, math.floor(math.log10(abs(v))) - width_exp + 2))) if v else "0"
        for v in values
    )


def _rhat(value) -> str:
    return "–" if value is None or not math.isfinite(float(value)) else f"{float(value):.3f}"


def _ess(value) -> str:
    return "–" if value is None or not math.isfinite(float(value)) else f"{float(value):.0f}"


# --------------------------------------------------------------------------- latex helpers

_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}
_GREEK = {
    "alpha": r"\alpha",
    "beta": r"\beta",
    "gamma": r"\gamma",
    "eta": r"\eta",
    "sigma": r"\sigma",
    "nu": r"\nu",
    "tau": r"\tau",
    "mu": r"\mu",
    "eps": r"\varepsilon",
}


def latex_escape(text: str) -> str:
    r"""Escape LaTeX's special characters.

    Example:
        >>> latex_escape("c4_original 5%")
        'c4\\_original 5\\%'
    """
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))


def _math_symbol(name: str) -> str | None:
    if name in _GREEK:
        return _GREEK[name]
    if re.fullmatch(r"[A-Za-z]", name):
        return name
    if m := re.fullmatch(r"([A-Za-z])(\d+)", name):  # c0 -> c_{0}
        return f"{m.group(1)}_{{{m.group(2)}}}"
    if m := re.fullmatch(r"([A-Za-z]+)_(mu|tau)", name):  # alpha_mu -> \mu_{\alpha}
        inner = _math_symbol(m.group(1))
        return None if inner is None else f"{_GREEK[m.group(2)]}_{{{inner}}}"
    if m := re.fullmatch(r"([A-Za-z]+)_([A-Za-z0-9]{1,2})", name):  # alpha_N, N_c, d_1
        inner = _math_symbol(m.group(1))
        return None if inner is None else f"{inner}_{{{m.group(2)}}}"
    return None


def latex_name(name: str) -> str:
    r"""A parameter name for LaTeX: math for symbols, escaped text otherwise.

    Example:
        >>> latex_name("alpha[c4_original]")
        '$\\alpha$[c4\\_original]'
        >>> latex_name("log_N_term")
        '\\texttt{log\\_N\\_term}'
    """
    base, _, rest = str(name).partition("[")
    symbol = _math_symbol(base)
    head = f"${symbol}$" if symbol is not None else rf"\texttt{{{latex_escape(base)}}}"
    return head + (f"[{latex_escape(rest[:-1])}]" if rest else "")


def _num(text: str) -> str:
    return text if text in ("–", "nan") else rf"\num{{{text}}}"


def _render(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    format: str,
    *,
    align: str,
    caption: str = "",
    label: str = "",
    floating: bool = True,
    notes: Sequence[str] = (),
) -> str:
    """One table in ``format``; cells are already formatted for it."""
    if format == "markdown":
        marks = {"l": ":--", "r": "--:", "c": ":-:"}
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join(marks[a] for a in align) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines + (["", *list(notes)] if notes else []))
    if format == "html":
        head = "".join(f"<th>{h}</th>" for h in header)
        body = "".join(
            "<tr>"
            + "".join(
                f'<td style="text-align:{_css(a)}">{c}</td>' for c, a in zip(r, align, strict=True)
            )
            + "</tr>"
            for r in rows
        )
        foot = "".join(f"<p>{n}</p>" for n in notes)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{foot}"
    lines = [
        rf"\begin{{tabular}}{{{align}}}",
        r"\toprule",
        " & ".join(header) + r" \\",
        r"\midrule",
    ]
    lines += [" & ".join(r) + r" \\" for r in rows]
    lines += [r"\bottomrule", r"\end{tabular}"]
    if not floating:
        return "\n".join(lines)
    text = " ".join([caption, *notes]).strip()
    wrapped = [r"\begin{table}[htbp]", r"\centering", rf"\caption{{{text}}}"]
    if label:
        wrapped.append(rf"\label{{{label}}}")
    return "\n".join([*wrapped, *lines, r"\end{table}"])


def _css(align: str) -> str:
    return {"l": "left", "r": "right", "c": "center"}[align]
