"""Writing and reading blocks of one image with a single qemu-io process.

Reading without a temporary raw copy: for every block and every token the example can store
(see ``qemu_common.BlockValues``), ``read -q -P BYTE`` checks the block (or each of its
halves, for a two-byte token) against it.  qemu-io prints
"Pattern verification failed" for a mismatch and nothing for a match, so each check is
followed by ``length`` (which always prints one line) to tell the checks apart.  A block
whose every check fails is neither empty nor one of the values: it reads as '?', as in
``qemu_common.decode_blocks``.  The same process can first do the writes, so a write step
and the read of the state it leaves cost one process start.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .qemu_common import BLOCK_SIZE, CALL_TIMEOUT, HALF, BlockValues, QemuCallFailed, halves, qemu_io_writes, run

FAILED = "Pattern verification failed"


def read_words(blocks: int, tokens: Sequence[str]) -> list[str]:
    words = []
    for block in range(blocks):
        offset = block * BLOCK_SIZE
        for token in tokens:
            first, second = halves(token)
            if first == second:
                words += ["-c", f"read -q -P {first} {offset} {BLOCK_SIZE}"]
            else:
                words += ["-c", f"read -q -P {first} {offset} {HALF}", "-c", f"read -q -P {second} {offset + HALF} {HALF}"]
            words += ["-c", "length"]
    return words


def parse_reads(stdout: str, blocks: int, values: Sequence[str]) -> dict[str, str]:
    """The view from the output of ``read_words``' commands (only that output)."""
    chunks: list[bool] = []  # per check: did it fail?
    failed = False
    for line in stdout.splitlines():
        if line.startswith(FAILED):
            failed = True
        elif line.strip():  # the `length` line closes one check
            chunks.append(failed)
            failed = False
    if len(chunks) != blocks * len(values):
        raise ValueError(f"qemu-io printed {len(chunks)} checks, expected {blocks * len(values)}:\n{stdout}")
    view = {}
    for block in range(blocks):
        matches = [v for i, v in enumerate(values) if not chunks[block * len(values) + i]]
        value = matches[0] if matches else "?"
        if value != "":
            view[str(block)] = value
    return view


def write_and_read(image: Path, writes: Sequence[tuple[int, str]], blocks: int, values: Sequence[str],
                   timeout: float = CALL_TIMEOUT) -> dict[str, str]:
    """Apply the writes (if any), then read every block: one qemu-io process.  A failing
    write raises QemuCallFailed with qemu-io's message."""
    quiet_writes = [w if w == "-c" else w.replace("write ", "write -q ", 1) for w in qemu_io_writes(writes)]
    # -t unsafe: no fsync; a scratch image need not survive a crash of the machine
    argv = ["qemu-io", "-f", "qcow2", "-t", "unsafe"] + ([] if writes else ["-r"])
    argv += quiet_writes + read_words(blocks, values) + [str(image)]
    done = run(argv, timeout)
    out, err = done.stdout.decode(errors="replace"), done.stderr.decode(errors="replace")
    # qemu-io exits 1 whenever one check fails, which is the normal case here; a real error
    # (cannot open, write failed, an offset it cannot parse) goes to stderr or says "failed" or
    # "Parsing error" in a non-pattern line
    trouble = [line for line in (err + out).splitlines() if line.strip() and not line.startswith(FAILED)
               and ("failed" in line or line.startswith("Parsing error") or line in err)]
    if trouble:
        raise QemuCallFailed(argv, done.returncode, "\n".join(trouble))
    return parse_reads(out, blocks, values)


def write_and_read_values(image: Path, writes: Sequence[tuple[int, str]], blocks: int,
                          values: BlockValues) -> dict[str, str]:
    """``write_and_read`` in the model's block values (stored as ``values`` says)."""
    tokens = [(block, values.stored(value)) for block, value in writes]
    return values.read(write_and_read(image, tokens, blocks, values.tokens()))
