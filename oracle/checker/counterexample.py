"""A divergence as a scenario file that replays: the history, with the model's expectations."""

from __future__ import annotations

import itertools
import sys
import time
from pathlib import Path

from snaptree.model.escape import printable
from snaptree.model.scenario import Scenario, ScenarioStep

from ..lockstep import Divergence, DriverError
from ..scenario_format import expect_element, to_xml


def counterexample(divergence: Divergence, driver: str, profile: str, blocks: int, seed: int | None) -> bytes:
    """A scenario file of the diverging history, with the model's expectations: the model
    passes it, the driver does not."""
    found = f"Found by snaptree check{'' if seed is None else f' --seed {seed}'}"
    if isinstance(divergence, DriverError):
        title = f"driver {driver} fails in its own code under the {profile} profile"
        what = f"{found}: {divergence.summary()}"
    else:
        title = f"driver {driver} diverges from the {profile} profile"
        what = f"{found}: after step {len(divergence.history)}, {divergence.differences[0]}"
    scenario = Scenario(
        profile=profile, blocks=blocks, disks=divergence.disks, title=title,
        description=f"{what}. Replay: snaptree replay FILE --driver {driver}",
        steps=[ScenarioStep(s.op, 0) for s in divergence.history],
    )
    last = len(divergence.history) - 1
    expects = [expect_element(s.model, s.model_state, views=i == last) for i, s in enumerate(divergence.history)]
    for i, element in enumerate(expects):
        if i != last:  # before the last step only the outcome is pinned down
            for key in ("current", "power", "snapshots"):
                if key in element.attrib:
                    del element.attrib[key]
            for child in list(element):
                element.remove(child)
    return to_xml(scenario, list(expects))


def write_counterexample(divergence: Divergence, driver: str, profile: str, blocks: int, out: str,
                         seed: int | None) -> Path | None:
    """Write the counterexample into the folder ``out`` under a new name: created exclusively,
    with -2, -3, ... after the second, so that checks finishing in the same second never
    overwrite each other's.  If it cannot be written, it goes to stderr rather than be lost,
    and None comes back."""
    data = counterexample(divergence, driver, profile, blocks, seed)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    safe_driver = "".join(c if c.isalnum() or c in "-_" else "_" for c in driver)
    try:
        Path(out).mkdir(parents=True, exist_ok=True)
        for n in itertools.count(1):
            path = Path(out) / f"counterexample-{safe_driver}-{profile}-{stamp}{'' if n == 1 else f'-{n}'}.xml"
            try:
                file = path.open("xb")
            except FileExistsError:
                continue
            with file:
                try:
                    file.write(data)
                except OSError:
                    path.unlink()  # no half a scenario
                    raise
            return path
    except OSError as error:
        sys.stderr.write(f"snaptree: cannot write the counterexample into {printable(out)}: "
                         f"{error.strerror or error}; here it is:\n{data.decode()}")
    return None
