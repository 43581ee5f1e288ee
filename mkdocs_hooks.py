"""MkDocs hooks for the documentation site (``hooks:`` in mkdocs.yml); not part of the package.

The package's docstrings cross-reference with Sphinx roles (``:class:`~pytest_camaudit.datatypes.Detection```),
which mkdocstrings renders as the role's name followed by the code span. After each page is rendered,
a role on a full ``pytest_camaudit.`` path becomes an optional autorefs cross-reference (a link when
the API reference documents the object, plain code otherwise), and any other role (a relative
``.family.Family``, a bare name) becomes plain code; a ``~`` shows only the last component. A
paragraph that ends in reStructuredText's ``::`` (its literal block follows, rendered as code)
ends in one colon.

:class:`BoundFunctions` (a griffe extension, ``extensions:`` in mkdocs.yml) documents a class attribute
bound to a module's function (``assert_detected = assertions.assert_detected`` in ``AuditCase``) as that
function, a method of the class with the function's own signature and docstring.
"""

from __future__ import annotations

import html
import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|data|attr|exc|obj|const):<code>(?P<tilde>~?)(?P<target>[^<]+)</code>")


def _replace(match: re.Match[str]) -> str:
    target = html.unescape(match["target"]).strip()
    shown = target.rsplit(".", 1)[-1] if match["tilde"] else target.lstrip(".")
    code = f"<code>{html.escape(shown)}</code>"
    if target.startswith("pytest_camaudit."):
        return f'<autoref identifier="{html.escape(target)}" optional>{code}</autoref>'
    return code


def on_page_content(html_text: str, **kwargs: Any) -> str:
    """Rewrite the Sphinx roles left in rendered docstrings (see the module docstring)."""
    return ROLE.sub(_replace, html_text).replace("::</p>", ":</p>")


class BoundFunctions(griffe.Extension):
    """A class attribute whose value is a function of another module (``name = module.function``) is that function.

    Statically griffe sees an attribute with no docstring, which the site would leave out; as a public alias
    of the function the class's page shows it as a method, with the function's signature and docstring.
    """

    def on_class_members(self, *, node: Any, cls: griffe.Class, agent: Any, **kwargs: Any) -> None:
        for name, member in list(cls.members.items()):
            value = None if member.is_alias else getattr(member, "value", None)
            if not (member.is_attribute and isinstance(value, griffe.ExprAttribute)):
                continue
            target = value.canonical_path
            if target.startswith("pytest_camaudit.") and target.rsplit(".", 1)[-1] == name:
                alias = griffe.Alias(name, target, lineno=member.lineno, endlineno=member.endlineno, parent=cls)
                alias.public = True
                cls.set_member(name, alias)
