"""The model's analyses written out (``snaptree explore --graph``, ``snaptree diff --out/--html``):
the state graph as GraphML or DOT, disagreement witnesses as scenario files, the HTML page.
The analyses themselves are pure and live in ``model/analysis/``."""

from __future__ import annotations

import html
import io
from collections.abc import Callable

from lxml import etree

from snaptree.model import Machine, notation, observe, ops
from snaptree.model.analysis.explore import Exploration, state_graph
from snaptree.model.analysis.profile_diff import Diff, Disagreement, ordered_groups, replay, stats_text
from snaptree.model.scenario import Scenario, ScenarioStep
from snaptree.model.step import Outcome

from .outputs import write_output
from .scenario_format import expect_element, to_xml


def write_graph(result: Exploration, path: str) -> None:
    """GraphML, or DOT by the name's extension (DOT written here: pydot is not a dependency);
    through ``write_output``, so never through a symbolic link."""
    import networkx as nx

    g = state_graph(result)
    if path.endswith(".graphml"):
        graphml = io.BytesIO()
        nx.write_graphml(g, graphml)
        write_output(path, graphml.getvalue())
        return
    out = io.StringIO()
    out.write("digraph states {\n")
    # the tree's lines left-aligned in a fixed-width font, as the seed's notation needs
    out.write('  node [shape=box, fontname="monospace"];\n  edge [fontname="monospace"];\n')
    for node, data in g.nodes(data=True):
        label = notation.dot_quote(f"state {node}, depth {data['depth']}\n{data['label']}", lines=True)
        out.write(f'  s{node} [label={label}];\n')
    for source, target, data in g.edges(data=True):
        out.write(f'  s{source} -> s{target} [label={notation.dot_quote(data["label"])}];\n')
    out.write("}\n")
    write_output(path, out.getvalue().encode())


def witness_xml(result: Diff, d: Disagreement) -> bytes:
    """The shortest history of a group as a scenario, with what each profile sees after its
    last step pinned down by a per-profile expectation (so `snaptree run` replays it under both)."""
    first, second = result.profiles
    scenario = Scenario(first, result.bounds.blocks, title=f"{first} and {second} differ: {d.group}",
                        description=f"{first}: {d.first}; {second}: {d.second} (found by snaptree diff)",
                        steps=[ScenarioStep(op, 0) for op in d.history])
    expects: list[etree._Element] = []
    for profile in result.profiles:
        m, outcomes = replay(profile, result.bounds.blocks, d.history, result.bounds.disks)
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


PAGE_STYLE = """body{font-family:sans-serif;margin:2em;max-width:80em}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:2px 8px;vertical-align:top;text-align:left}.differs td{background:#fdd}
.error .kind{color:#b00;font-weight:bold}.message{color:#555;font-size:85%;max-width:32em}
.trees{display:flex;gap:3em;flex-wrap:wrap}.tree svg{max-width:40em;height:auto}.state{color:#333}
.legend{background:#f6f6f6;border:1px solid #ddd;padding:.5em 1em;margin:1.5em 0}.legend dt{font-weight:bold;margin-top:.5em}
code{font-family:monospace,monospace}
.swatch{display:inline-block;width:1em;height:1em;background:#fdd;border:1px solid #ccc;vertical-align:middle}"""

LEGEND = """<section class='legend' id='legend'><h2>How to read this page</h2><dl>
<dt>The summary</dt><dd><i>what differs, after</i>: the first thing in which the two profiles disagree
(outcome, tree, current, power, recorded state, memory, RAM, what a point in time reads) and the operation
after which they do; <i>steps</i>: the length of the shortest history that shows it (below, one section
each). A tree cell numbers the snapshots in creation order: <code>2.A&lt;1</code> is the second, named A,
a child of the first (<code>&lt;-</code>: a root); <code>roots</code> and <code>kids of N</code> give the
sibling order where both profiles define it.</dd>
<dt>A history</dt><dd><i>#</i>: the step; <i>step</i>: the operation as a scenario file writes it
(<code>revert A</code>, <code>write 0=a</code>: block 0 gets the value a); then one column per profile: ok,
or the <span class='error'><span class='kind'>error kind</span></span> with the system's own message below.
<span class='swatch'></span> the last step, after which the profiles part ways.</dd>
<dt>The trees</dt><dd>Each profile's snapshots after the last step, in the seed's notation: a box is a snapshot,
a double frame one that holds a memory image; an arrow points from a child to its parent, and its number names
the overlay (the copy-on-write delta) in the seed's order; <code>base</code> is the empty disk, <code>current</code>
the running state, which writes into its own overlay on top of the snapshot it points to.  Where names repeat,
a name is followed by <code>#</code> and the snapshot's id, shortened: the first 8 characters of a UUID, or
<code>…</code> and its last characters where those tell it apart; an empty name is <code>""</code>.  Below each
tree: the power state and the current snapshot.</dd></dl></section>"""


def html_report(result: Diff, svg: Callable[[Machine], str]) -> str:
    """The table as one self-contained page: a legend, then per group the steps side by side
    (each outcome with its error kind and message) and each profile's tree after them (``svg``
    draws a machine's tree)."""
    first, second = result.profiles
    esc = html.escape
    groups = ordered_groups(result)
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{esc(first)} vs {esc(second)}</title>"
             f"<style>{PAGE_STYLE}</style></head><body><h1>{esc(first)} vs {esc(second)}</h1>",
             f"<p>{esc(stats_text(result))}</p><table class='summary'><tr><th>what differs, after</th><th>steps</th>"
             f"<th>{esc(first)}</th><th>{esc(second)}</th></tr>"]
    parts += [f"<tr><td><a href='#group-{n}'>{esc(group)}</a></td><td>{len(d.history)}</td><td>{esc(d.first)}</td>"
              f"<td>{esc(d.second)}</td></tr>" for n, (group, d) in enumerate(groups, 1)]
    parts += ["</table>", LEGEND]
    for n, (group, d) in enumerate(groups, 1):
        runs = [replay(profile, result.bounds.blocks, d.history, result.bounds.disks) for profile in result.profiles]
        parts.append(f"<section class='group' id='group-{n}'><h2>{esc(group)}</h2><p>After step {len(d.history)} "
                     f"(<code>{esc(ops.describe(d.op))}</code>): <b>{esc(first)}</b> {esc(d.first)}; "
                     f"<b>{esc(second)}</b> {esc(d.second)}.</p><table class='steps'><tr><th>#</th><th>step</th>"
                     f"<th>{esc(first)}</th><th>{esc(second)}</th></tr>")
        for i, op in enumerate(d.history):
            last = " class='differs'" if i == len(d.history) - 1 else ""
            cells = "".join(_outcome_cell(outcomes[i]) for _, outcomes in runs)
            parts.append(f"<tr{last}><td>{i + 1}</td><td><code>{esc(ops.describe(op))}</code></td>{cells}</tr>")
        parts.append("</table><div class='trees'>")
        for profile, (m, _) in zip(result.profiles, runs, strict=True):
            drawing = svg(m)
            parts.append(f"<div class='tree' data-profile='{esc(profile)}'><h3>{esc(profile)} after step "
                         f"{len(d.history)}</h3>{drawing[drawing.find('<svg'):]}<p class='state'>"
                         f"{esc(notation.power_and_current(m, short_ids=True))}"
                         "</p></div>")
        parts.append("</div></section>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _outcome_cell(outcome: Outcome) -> str:
    if outcome.ok:
        return "<td>ok</td>"
    return (f"<td class='error'><span class='kind'>{html.escape(str(outcome.kind))}</span>"
            f"<div class='message'>{html.escape(outcome.message or '')}</div></td>")

