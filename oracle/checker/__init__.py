"""Running a check: its configuration, the run, progress, results, counterexamples, reports and
replays, one module each.  The public face is ``snaptree.oracle``."""
