"""Griffe extension: the package's reST-flavoured docstrings read as Markdown in the API pages.

The docstrings are Google style with two reST habits the renderer does not know:

- ``Example:`` (singular) is not a section Griffe's Google parser recognises, so its
  doctests would be rendered as Markdown (``>>>`` as nested quotes); it is read as
  ``Examples:``, whose ``>>>`` blocks become code;
- Sphinx roles (``:class:`~bayescale.posterior.Fit```, ``:func:`fit```, ``:math:`...```)
  become code spans with the name as it would print (the last component after ``~``).

The docstrings themselves are left as they are: ``help()`` and doctests read them too.
"""

from __future__ import annotations

import re

import griffe

_EXAMPLE = re.compile(r"^([ \t]*)Example:[ \t]*$", re.MULTILINE)
_ROLE = re.compile(r":(?:class|func|meth|attr|data|mod|obj|exc|math):`(~?)([^`]+)`")


def _role(match: re.Match) -> str:
    short, target = match.groups()
    if short:
        target = target.rsplit(".", 1)[-1]
    return f"`{target}`"


def rst_to_markdown(text: str) -> str:
    """The docstring ``text`` with ``Example:`` sections and Sphinx roles rewritten.

    Example:
        >>> rst_to_markdown("See :class:`~bayescale.posterior.Fit`.\\n\\nExample:\\n    >>> 1")
        'See `Fit`.\\n\\nExamples:\\n    >>> 1'
    """
    return _ROLE.sub(_role, _EXAMPLE.sub(r"\1Examples:", text))


class RstToMarkdown(griffe.Extension):
    """Rewrite every docstring once the object tree is built."""

    def on_object(self, *, obj, loader, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = rst_to_markdown(obj.docstring.value)
