"""axe-core, from npm (tests/browser/package.json, `npm ci --prefix tests/browser`), run inside a page.

The pages under test ship no JavaScript and forbid inline scripts (CSP `script-src 'self'`), so the audit
runs in a context with JavaScript on and `bypass_csp` set, and injects axe from the local file: the test's
script, never the page's, and nothing fetched from anywhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page

AXE_JS = Path(__file__).resolve().parent / "node_modules" / "axe-core" / "axe.min.js"
# WCAG 2.0 and 2.1, levels A and AA (axe's tags for them); best practices and AAA are not asked for.
WCAG_21_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


def audit(page: Page) -> list[dict[str, Any]]:
    """The WCAG 2.1 A/AA violations axe finds in the page as it is now."""
    if not AXE_JS.exists():
        pytest.fail(f"axe-core is not installed ({AXE_JS}): run `npm ci --prefix tests/browser`")
    page.add_script_tag(path=AXE_JS)
    violations: list[dict[str, Any]] = page.evaluate(
        """async (tags) => {
            const result = await axe.run(document, {
                runOnly: {type: "tag", values: tags},
                resultTypes: ["violations"],
            });
            return result.violations.map((v) => ({
                id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
                nodes: v.nodes.map((n) => ({
                    target: n.target.join(" "), html: n.html, summary: n.failureSummary,
                })),
            }));
        }""",
        WCAG_21_AA,
    )
    return violations


def describe(where: str, violations: list[dict[str, Any]]) -> str:
    """One readable block per page: each rule, how bad, and every element it caught, with axe's advice."""
    lines = [f"{where}:"]
    for violation in violations:
        rule = f"{violation['id']}: {violation['help']}"
        lines.append(f"  [{violation['impact']}] {rule} ({violation['helpUrl']})")
        for node in violation["nodes"][:8]:
            lines.append(f"      at {node['target']}: {node['html'][:160]}")
            lines.extend(f"        {line}" for line in (node["summary"] or "").splitlines())
        if len(violation["nodes"]) > 8:
            lines.append(f"      ... and {len(violation['nodes']) - 8} more elements")
    return "\n".join(lines)
