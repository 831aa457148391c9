"""The model's analyses written out (``snaptree explore --graph``, ``snaptree diff --out/--html``):
the state graph as GraphML or DOT, disagreement witnesses as scenario files, the HTML page.
The analyses themselves are pure and live in ``model/analysis/``."""

from __future__ import annotations

import html
from collections.abc import Callable

from lxml import etree

from snaptree.model import Machine, observe, ops
from snaptree.model.analysis.explore import Exploration, state_graph
from snaptree.model.analysis.profile_diff import Diff, Disagreement, replay, table_text
from snaptree.model.scenario import Scenario, ScenarioStep

from .scenario_format import expect_element, to_xml


def write_graph(result: Exploration, path: str) -> None:
    """GraphML, or DOT by the name's extension (DOT written here: pydot is not a dependency)."""
    import networkx as nx

    g = state_graph(result)
    if path.endswith(".graphml"):
        nx.write_graphml(g, path)
        return
    with open(path, "w", encoding="utf-8") as out:
        out.write("digraph states {\n")
        for node, data in g.nodes(data=True):
            out.write(f'  s{node} [label="{node}\\nd{data["depth"]}"];\n')
        for source, target, data in g.edges(data=True):
            label = f'{data["op"]}: {data["outcome"]}'.replace("\\", "\\\\").replace('"', '\\"')
            out.write(f'  s{source} -> s{target} [label="{label}"];\n')
        out.write("}\n")


def witness_xml(result: Diff, d: Disagreement) -> bytes:
    """The shortest history of a group as a scenario, with what each profile sees after its
    last step pinned down by a per-profile expectation (so `snaptree run` replays it under both)."""
    first, second = result.profiles
    scenario = Scenario(first, result.bounds.blocks, title=f"{first} and {second} differ: {d.group}",
                        description=f"{first}: {d.first}; {second}: {d.second} (found by snaptree diff)",
                        steps=[ScenarioStep(op, 0) for op in d.history])
    expects: list[etree._Element] = []
    for profile in result.profiles:
        m, outcomes = replay(profile, result.bounds.blocks, d.history)
        e = expect_element(outcomes[-1], observe(m))
        e.set("profile", profile)
        expects.append(e)
    pinned: list[etree._Element | None] = [None] * (len(d.history) - 1)
    root = etree.fromstring(to_xml(scenario, [*pinned, expects[0]]))
    root.append(expects[1])
    etree.indent(root)
    return etree.tostring(root, pretty_print=True, xml_declaration=True, encoding="UTF-8")


def witness_name(result: Diff, d: Disagreement) -> str:
    pair = f"-{d.first}-{d.second}" if d.aspect == "outcome" else ""
    return f"diff-{result.profiles[0]}-{result.profiles[1]}-{d.aspect}-{d.op.tag}{pair}.xml"


PAGE_STYLE = """body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:2px 8px}.differs td{background:#fdd}.trees{display:flex;gap:3em}
.tree svg{max-width:40em;height:auto}"""


def html_report(result: Diff, svg: Callable[[Machine], str]) -> str:
    """The table as one self-contained page: per group the steps side by side and each
    profile's tree after them (``svg`` draws a machine's tree)."""
    first, second = result.profiles
    esc = html.escape
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{esc(first)} vs {esc(second)}</title>"
             f"<style>{PAGE_STYLE}</style></head><body><h1>{esc(first)} vs {esc(second)}</h1>",
             f"<pre>{esc(table_text(result))}</pre>"]
    for group, d in sorted(result.groups.items(), key=lambda item: (len(item[1].history), item[0])):
        runs = [replay(profile, result.bounds.blocks, d.history) for profile in result.profiles]
        parts.append(f"<section class='group'><h2>{esc(group)}</h2><p>{esc(first)}: {esc(d.first)}<br>"
                     f"{esc(second)}: {esc(d.second)}</p><table><tr><th>#</th><th>step</th>"
                     f"<th>{esc(first)}</th><th>{esc(second)}</th></tr>")
        for i, op in enumerate(d.history):
            last = " class='differs'" if i == len(d.history) - 1 else ""
            parts.append(f"<tr{last}><td>{i + 1}</td><td>{esc(ops.describe(op))}</td>"
                         f"<td>{esc(runs[0][1][i].brief())}</td><td>{esc(runs[1][1][i].brief())}</td></tr>")
        parts.append("</table><div class='trees'>")
        for profile, (m, _) in zip(result.profiles, runs, strict=True):
            drawing = svg(m)
            parts.append(f"<div class='tree' data-profile='{esc(profile)}'><h3>{esc(profile)}</h3>"
                         f"{drawing[drawing.find('<svg'):]}</div>")
        parts.append("</div></section>")
    parts.append("</body></html>")
    return "\n".join(parts)
