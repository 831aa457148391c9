"""The commands that explore the model within small bounds: explore and diff."""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING

from snaptree.model.escape import plural, printable

from ..errors import UsageError
from ..outputs import write_output, write_outputs
from .common import EXIT_FAILED, EXIT_OK, check_writable, layout, names, one_profile, output, positive
from .graphviz import svg

if TYPE_CHECKING:  # imported when a command runs: networkx is slow to load for the other commands
    from snaptree.model.analysis.explore import Bounds


def bound_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--names", type=names, help="snapshot names (default A,B)")
    p.add_argument("--blocks", type=positive, default=2, help="disk size in blocks (default 2)")
    p.add_argument("--values", type=names, help="values written (default a,b)")
    p.add_argument("--ops", type=names, help="operations, by scenario tag (default: all the profile has)")
    p.add_argument("--unnamed", action="store_true", help="also creates without a name")
    p.add_argument("--disks", type=layout, metavar="LAYOUT",
                   help="the VM's disks, e.g. vda,vdb or vda,vdb:excluded (default: one qcow2 disk)")


def bounds(args: argparse.Namespace) -> Bounds:
    from snaptree.model.analysis.explore import Bounds

    defaults = Bounds()
    return Bounds(names=args.names or defaults.names, blocks=args.blocks, values=args.values or defaults.values,
                  operations=args.ops or defaults.operations, flags=getattr(args, "flags", defaults.flags),
                  unnamed=args.unnamed, disks=args.disks or defaults.disks)


def cmd_explore(args: argparse.Namespace) -> int:
    from snaptree.model.analysis.explore import BoundsError, explore, report_text

    from ..analysis_reports import write_graph

    profile = one_profile(args.profile)
    assert profile is not None
    given = bounds(args)
    if args.graph and not args.graph.endswith((".graphml", ".dot", ".gv")):
        raise UsageError(f"--graph {args.graph}: the name must end in .graphml or .dot")
    if args.graph:
        check_writable(args.graph, "--graph", folder=False)
    try:
        result = explore(profile, args.depth, given, graph=bool(args.graph))
    except BoundsError as error:
        raise UsageError(str(error)) from None
    print(report_text(result))
    if args.graph:
        with output("--graph", args.graph):
            write_graph(result, args.graph)
        print(printable(f"graph: {args.graph}"))
    return EXIT_FAILED if result.violations else EXIT_OK


def cmd_diff(args: argparse.Namespace) -> int:
    from snaptree.model.analysis.explore import BoundsError
    from snaptree.model.analysis.profile_diff import diff, table_text

    from ..analysis_reports import html_report, witness_name, witness_xml

    first, second = one_profile(args.first), one_profile(args.second)
    assert first is not None and second is not None
    if first == second:
        raise UsageError(f"diff needs two different profiles, not {first} twice")
    if args.out:
        check_writable(args.out, "--out", folder=True)
    if args.html:
        check_writable(args.html, "--html", folder=False)
    try:
        result = diff(first, second, args.depth, bounds(args))
    except BoundsError as error:
        raise UsageError(str(error)) from None
    print(table_text(result))
    if args.out:
        with output("--out", args.out):
            os.makedirs(args.out, exist_ok=True)
            # predictable names, in a folder that may be shared: none written when one is a link
            write_outputs({os.path.join(args.out, witness_name(result, d)): witness_xml(result, d)
                           for d in result.groups.values()})
        print(printable(f"{plural(len(result.groups), 'witness', 'witnesses')} in {args.out}: "
                        f"snaptree compare FILE --profiles {first},{second}"))
    if args.html:
        page = html_report(result, svg)
        with output("--html", args.html):
            write_output(args.html, page.encode())
        print(printable(f"report: {args.html}"))
    return EXIT_OK
