"""`snaptree`: the parser of every command, and how a command ends (exit status, one-line
errors, signals, a closed or full stdout)."""

from __future__ import annotations

import argparse
import importlib.metadata
import sys
import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from snaptree.model.escape import printable
from snaptree.model.scenario import ScenarioError

from .. import lifetime
from ..driver import DriverUnavailable, EnvironmentFailure
from ..errors import UsageError, hide_secrets
from ..scenario_format import SEED_EXAMPLE
from . import streams
from .catalog_commands import cmd_drivers, cmd_findings
from .check_commands import cmd_check, cmd_replay
from .common import EXIT_BAD_INPUT, EXIT_OK, OUTPUT_FULL, Parser, layout, positive, uri
from .explore_commands import bound_options, cmd_diff, cmd_explore
from .help_texts import EXAMPLES
from .model_commands import cmd_compare, cmd_dumpxml, cmd_profiles, cmd_run, cmd_show


def vsphere_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", help="vsphere: a real host, https://USER:PASS@HOST/sdk (default: the bundled simulator)")
    p.add_argument("--vm", help="vsphere: the VM on that host whose snapshots are checked")
    p.add_argument("--insecure", action="store_true", help="vsphere: do not verify the host's certificate")


def snaptree_version() -> str:
    """The installed package's version, as pip reports it; run from a checkout that is only on the
    path (the backports chroot), the version its pyproject.toml names."""
    try:
        return importlib.metadata.version("snaptree")
    except importlib.metadata.PackageNotFoundError:
        with open(Path(__file__).resolve().parents[2] / "pyproject.toml", "rb") as file:
            return str(tomllib.load(file)["project"]["version"])


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="snaptree",
        description="Hypervisor snapshot semantics: a model of every hypervisor's rules, "
                    "scenario files, and an oracle that checks real drivers against the model.",
        epilog="Start with `snaptree compare`: the seed's 'delete B' example under every profile.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )

    parser.add_argument("--version", action="version", version=f"snaptree {snaptree_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, help: str, handler: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help, epilog=EXAMPLES.get(name),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.set_defaults(handler=handler)
        return p

    p = command("run", "run scenario files on the model and check their expectations", cmd_run)
    p.add_argument("files", nargs="*", metavar="FILE", help="scenario files (default: the shipped library)")
    p.add_argument("--profile", help="run under this profile (or each of a,b) instead of each file's own")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.add_argument("-q", "--quiet", action="store_true", help="one line per passing file")

    p = command("compare", "run one scenario under several profiles, side by side", cmd_compare)
    p.add_argument("file", nargs="?", metavar="FILE", help=f"scenario file (default: {SEED_EXAMPLE})")
    p.add_argument("--profiles", help="comma-separated profile names (default: all)")
    p.add_argument("--format", choices=["text", "json"], default="text")

    p = command("show", "draw the snapshot tree at a step of a scenario", cmd_show)
    p.add_argument("file", metavar="FILE")
    p.add_argument("--step", type=int, help="after this many steps (default: all)")
    p.add_argument("--profile", help="under this profile instead of the file's own")
    p.add_argument("--format", choices=["text", "dot", "svg", "virsh"], default="text",
                   help="virsh: as `virsh snapshot-list --tree` prints it")

    p = command("dumpxml", "print a modelled snapshot as libvirt <domainsnapshot> XML", cmd_dumpxml)
    p.add_argument("file", metavar="FILE")
    p.add_argument("name", metavar="NAME", help="the snapshot's name (or id)")
    p.add_argument("--step", type=int, help="after this many steps (default: all)")
    p.add_argument("--profile", help="under this profile instead of the file's own")

    p = command("check", "check a driver against a profile over random histories", cmd_check)
    p.add_argument("--driver", required=True, help="a driver name (see `snaptree drivers`) or module:Class")
    p.add_argument("--profile", help="the profile to check against (default: the driver's first)")
    p.add_argument("--uri", type=uri, help="connection URI, for drivers that take one (libvirt)")
    vsphere_options(p)
    p.add_argument("--examples", type=positive, help="random histories (default 100)")  # None: not given
    p.add_argument("--steps", type=positive, help="operations per history at most (default 20)")
    p.add_argument("--blocks", type=positive, default=8, help="disk size in blocks (default 8)")
    p.add_argument("--disks", type=layout, metavar="LAYOUT",
                   help="every history on this VM, e.g. vda,vdb:raw or vda,pflash1:nvram (default: drawn "
                        "from the layouts the driver builds)")
    p.add_argument("--seed", type=int, help="make the run repeatable")
    p.add_argument("--junit", metavar="FILE", help="also write a JUnit XML report")
    p.add_argument("--out", metavar="DIR", default="snaptree-out", help="where counterexamples go")
    p.add_argument("--database", metavar="DIR|URL",
                   help="Hypothesis example database: a directory, redis://HOST:PORT/DB (shared by runners on "
                        "several machines), or 'none' (default .snaptree/examples)")
    p.add_argument("--workers", type=positive,
                   help="run the shards in this many processes at once (default 1)")
    p.add_argument("--shards", type=positive,
                   help="split the examples into this many shards, each with a seed of its own (default: --workers)")
    p.add_argument("--shard", metavar="K/N",
                   help="run only shard K of N (the same shard as in a run of N shards): one runner of N")
    p.add_argument("--no-guards", action="store_true",
                   help="also draw what the guards of known findings (scenarios/findings/) leave out")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.add_argument("--plan", choices=["random", "cover"], default="random",
                   help="cover: every transition of the state graph to --depth, instead of random histories")
    p.add_argument("--depth", type=positive, help="with --plan cover: the graph's depth (default 3)")

    p = command("replay", "replay a scenario on a driver and the model, and compare", cmd_replay)
    p.add_argument("file", metavar="FILE")
    p.add_argument("--driver", required=True, help="a driver name or module:Class")
    p.add_argument("--profile", help="default: the scenario's profile")
    p.add_argument("--uri", type=uri, help="connection URI, for drivers that take one")
    vsphere_options(p)

    p = command("findings", "list the real bugs snaptree has found (scenarios/findings/)", cmd_findings)
    p.add_argument("--replay", action="store_true",
                   help="replay each on its driver here; exit 1 when one seen on these versions no longer diverges, "
                        "or one diverges on versions it does not list; exit 2 when none could be replayed here")
    p.add_argument("--format", choices=["text", "json"], default="text")

    p = command("explore", "explore every history of the model within small bounds", cmd_explore)
    p.add_argument("--profile", required=True, help="the profile to explore")
    p.add_argument("--depth", type=positive, default=4, help="operations per history at most (default 4)")
    bound_options(p)
    p.add_argument("--flags", choices=["none", "common", "all"], default="common",
                   help="none; common: each single revert and delete flag (default); all: create flags too")
    p.add_argument("--graph", metavar="FILE",
                   help="write the state graph (.graphml or .dot): each node its state, each edge its operation")

    p = command("diff", "every way two profiles part ways on the same small histories", cmd_diff)
    p.add_argument("first", metavar="P1")
    p.add_argument("second", metavar="P2")
    p.add_argument("--depth", type=positive, default=5, help="operations per history at most (default 5)")
    p.add_argument("--out", metavar="DIR", help="write each group's shortest history as a scenario file")
    p.add_argument("--html", metavar="FILE",
                   help="also write the table as one page: steps side by side with error messages, trees drawn, a legend")
    bound_options(p)

    p = command("drivers", "list the drivers and whether their real component is here", cmd_drivers)
    p.add_argument("--format", choices=["text", "json"], default="text")

    p = command("profiles", "list the profiles and the system each follows", cmd_profiles)
    p.add_argument("--format", choices=["text", "json"], default="text")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    lifetime.skip_final_collection()
    with streams.standard_streams():  # a closed, non-Unicode or abandoned stdout (oracle/cli/streams.py)
        return _main(argv)


def _main(argv: Sequence[str] | None) -> int:
    try:
        args: Any = build_parser().parse_args(argv)
        with lifetime.signals_handled():  # SIGTERM, SIGHUP, SIGINT: unwind, clean up, exit 128 + signal
            code = int(args.handler(args))
            sys.stdout.flush()  # a full disk shows here, not at exit
        return code
    except (UsageError, ScenarioError, DriverUnavailable, EnvironmentFailure) as error:
        print(f"snaptree: {printable(hide_secrets(str(error)))}", file=sys.stderr)  # one line, whatever it quotes
        return EXIT_BAD_INPUT
    except BrokenPipeError:  # a write that went around sys.stdout: the status is lost with the output
        streams.drop_stdout()
        return EXIT_OK
    except OSError as error:
        if error.errno not in OUTPUT_FULL:
            raise  # a bug: keep its traceback
        streams.drop_stdout()
        print(f"snaptree: cannot write the output: {error.strerror}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except lifetime.Terminated as signalled:
        print(f"snaptree: {signalled}", file=sys.stderr)
        return signalled.exit_status
    except KeyboardInterrupt:
        print("snaptree: interrupted", file=sys.stderr)
        return 130
