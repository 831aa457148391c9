"""The examples and exit statuses each command's --help ends with."""

EXAMPLES = {
    "findings": """examples:
  snaptree findings                              the bugs found so far, with the versions they were seen on
  snaptree findings --replay                     replay each on this machine's components (CI does, on both
                                                 version sets: a fix upstream, or a new version, turns it red)
  bash .ci/backports run snaptree findings --replay   the same on bookworm-backports' libvirt and QEMU

exit status: 0 every finding behaves as it says, 1 one does not (update it), 2 bad input""",
    "run": """examples:
  snaptree run                                   run every scenario shipped with snaptree
  snaptree run scenarios/seed-delete-leaf.xml    run one file under its own profile
  snaptree run my.xml --profile vbox             the same steps under VirtualBox's rules
  snaptree run my.xml --format json              machine-readable, for CI

exit status: 0 every expectation holds, 1 one does not, 2 bad input""",
    "compare": """examples:
  snaptree compare                               the seed's "delete B" under every profile
  snaptree compare my.xml --profiles esx,vbox    two profiles side by side

Each row is a step; each column says what it did under one profile (ok, or the error kind).
Then each profile's final tree in the seed's notation and what every snapshot reads.""",
    "show": """examples:
  snaptree show scenarios/seed-delete-leaf.xml --step 6
  snaptree show my.xml --format dot | dot -Tpng > tree.png
  snaptree show my.xml --format svg > tree.svg   (needs Graphviz)
  snaptree show my.xml --format virsh            as `virsh snapshot-list --tree` prints it

notation: base <--1-- A <--2-- B <--3-- current
                      + <--4-- D
arrows point from child to parent; numbers are overlays; 'current' is the running state.""",
    "profiles": """example:
  snaptree profiles""",
    "check": """examples:
  snaptree check --driver model --profile vbox          self-check: the model against itself
  snaptree check --driver qemu-img --examples 50 --seed 1 --junit check.xml
  snaptree check --driver mypkg.snap:MyDriver --profile libvirt-test
  snaptree check --driver qemu-img --plan cover --depth 3   every transition of the bounded state graph
  snaptree check --driver qemu-hmp --examples 400 --shards 8 --workers 2 --seed 1   8 shards, 2 processes at a time
  snaptree check --driver qemu-hmp --examples 400 --shard 3/8 --seed 1 --database redis://ci:6379/0   one runner of 8

It drives random histories through the driver and the model in lockstep and compares, after
every step, the outcome (ok or error kind) and everything the driver observes: the tree,
current snapshot, power state, memory images, and the blocks every snapshot reads.  A
divergence is shrunk to a minimal history and written as a scenario file that replays.
Failures found once are tried first next time (Hypothesis' example database, --database).

Sizes have limits (--steps 200, --blocks 4096, --examples x --steps 200,000 per shard, --workers
twice the CPUs; README, "Limits"); the progress line estimates the time left.  A signal prints
what ran so far, then one line.

exit status: 0 conforms, 1 diverges (the scenario path is printed), 3 driver error (the driver's own code
raised, or observed in the wrong shape), 2 set-up error (the machine under
the driver failed: a full disk, a disk size qcow2 cannot hold), bad input, or the example database lost
during the run (after the report and the counterexample), 130 SIGINT, 143 SIGTERM""",
    "replay": """examples:
  snaptree replay snaptree-out/counterexample-qemu-img-qemu-img-20261126-101500.xml --driver qemu-img
  snaptree replay scenarios/seed-delete-leaf.xml --driver model --profile esx

exit status: 0 the driver and the model agree on every step, 1 they part ways, 3 driver error, 2 set-up error or bad
input, 130 SIGINT, 143 SIGTERM""",
    "dumpxml": """examples:
  snaptree dumpxml scenarios/seed-delete-leaf.xml B
  snaptree dumpxml my.xml C --step 5 --profile libvirt-qemu

Prints what `virsh snapshot-dumpxml DOMAIN NAME` would show for the modelled snapshot.""",
    "explore": """examples:
  snaptree explore --profile esx --depth 6            every history of up to 6 operations
  snaptree explore --profile vbox --depth 5 --names A,B,C --blocks 1 --values a
  snaptree explore --profile libvirt-test --depth 4 --ops snapshot,revert,delete --flags all
  snaptree explore --profile qemu-img --depth 4 --graph states.graphml   (or states.dot)

Histories are drawn from a finite alphabet: writes of each value to each block, the
profile's power operations, creates of each name, reverts and deletes of each name (with
each single flag the system accepts, --flags common), delete-all.  Equal states are explored
once.  The four properties of the model are checked on every transition.

At most 1,000 operations in the alphabet, 1,000,000 transitions and 300,000 states (README, "Limits"):
over them, one line and exit 2 naming the depth that fits (over the transitions, before it starts).

exit status: 0 no property is violated, 1 one is (the shortest history is printed), 2 bad input""",
    "diff": """examples:
  snaptree diff esx vbox                          where ESX and VirtualBox part ways, to depth 5
  snaptree diff qemu-hmp qemu-qmp --depth 6 --out witnesses
  snaptree diff libvirt-test proposal-2010 --names A,B,C --blocks 1
  snaptree diff esx vbox --html esx-vbox.html     one page: each group's steps side by side, trees drawn

Both profiles take the same histories of flag-free operations both can express (writes,
creates, reverts and deletes by name, shared power operations, delete-all).  Every first
disagreement (outcome, tree, current, power, recorded state, memory, RAM, what any point in
time reads) is kept, grouped by what differs and the operation that reveals it, with the
shortest history of each group; --out writes each as a scenario file with each profile's
expectations, which `snaptree run FILE --profile a,b` and `snaptree compare` replay.

exit status: 0 (differences are the answer, not a failure), 2 bad input""",
    "drivers": """example:
  snaptree drivers          each driver, whether its real component is installed, what it observes""",
}
