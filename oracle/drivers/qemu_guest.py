"""The guest and firmware of the live QEMU drivers (``qemu_live``), and how their memory and NVRAM
are read as the model's tokens.

The guest is a boot sector on a read-only raw disk that increments the 32-bit counter at 0x500
forever, so RAM content is the counter's value (``qemu_live``'s docstring says how it is
measured); on a VM with an NVRAM disk it is an EFI application that OVMF starts and that counts
at 0x500 the same way.
"""

from __future__ import annotations

import struct
from pathlib import Path

from .qemu_common import halves, image_bytes
from .qemu_process import Node

# xor ax,ax; mov ds,ax; l: inc dword [0x500]; jmp l   [semantics.md §5.8]
BOOT_SECTOR = bytes.fromhex("31c08ed866ff060005ebf9")
BOOT_DISK_SIZE = 1 << 20  # SeaBIOS cannot read a 512-byte disk (0 cylinders); 1 MiB boots
BIOS_SIZE = 1 << 16


def counter_bios() -> bytes:
    """A 64 KiB firmware that is the guest itself: the reset vector jumps to the boot sector's
    loop at F000:0000. It counts from QEMU's first instructions; SeaBIOS took about a second
    under TCG to reach the boot sector (the boot disk stays attached, as the VM's read-only disk)."""
    return BOOT_SECTOR.ljust(BIOS_SIZE - 16, b"\0") + bytes.fromhex("ea000000f0").ljust(16, b"\0")
WRAP = 1 << 32


def token(counter: int) -> str:
    """A memory image's token: the guest's counter in it."""
    return f"{counter:#010x}"


# -- OVMF and its NVRAM [semantics.md §9] -----------------------------------------------------------
#
# An NVRAM disk is OVMF's variable store on pflash1 (OVMF_VARS_4M.fd as Debian's ovmf ships it,
# raw, or converted to qcow2), with OVMF_CODE_4M.fd read-only as pflash0; the guest is then an EFI
# application that counts at 0x500 as the boot sector does.  The NVRAM's blocks are 4 KiB pieces
# of its erased (0xff) area from 0x60000 on, so the firmware keeps its variables: a token's bytes
# are stored inverted there (empty = erased).
OVMF_CODE = Path("/usr/share/OVMF/OVMF_CODE_4M.fd")
OVMF_VARS = Path("/usr/share/OVMF/OVMF_VARS_4M.fd")
NV_BASE = 0x60000
NV_BLOCK = 4096
NV_SIZE = 0x84000  # OVMF_VARS_4M.fd
NV_BLOCKS = (NV_SIZE - NV_BASE) // NV_BLOCK


def efi_counter(counter: int = 0x500) -> bytes:
    """A PE32+ EFI application: SetWatchdogTimer(0, 0, 0, NULL) (the boot manager's 5-minute
    watchdog would reset the VM), then ``inc dword [counter]`` forever.  Padded to 8 KiB: QEMU
    reads ``-kernel`` as a Linux kernel first and wants more than its setup sectors; OVMF gets the
    file back whole over fw_cfg and starts it."""
    code = bytes.fromhex("4883ec28" "488b4260" "31c9" "31d2" "4531c0" "4531c9" "ff9000010000")  # rdx: SystemTable
    code += b"\xff\x04\x25" + struct.pack("<I", counter) + b"\xeb\xf7"  # l: inc dword [counter]; jmp l
    dos = b"MZ".ljust(0x3C, b"\0") + struct.pack("<I", 0x40)
    coff = b"PE\0\0" + struct.pack("<HHIIIHH", 0x8664, 1, 0, 0, 0, 240, 0x0022)
    optional = struct.pack("<HBBIIIII", 0x20B, 0, 0, 0x200, 0, 0, 0x1000, 0x1000)
    optional += struct.pack("<QII", 0x10000000, 0x1000, 0x200) + bytes(12)
    optional += struct.pack("<IIIIHH", 0, 0x2000, 0x200, 0, 10, 0)  # subsystem 10: EFI application
    optional += struct.pack("<QQQQII", 0x10000, 0x10000, 0x10000, 0x10000, 0, 16) + bytes(128)
    section = b".text\0\0\0" + struct.pack("<IIIIIIHHI", len(code), 0x1000, 0x200, 0x200, 0, 0, 0, 0, 0x60000020)
    image = (dos + coff + optional + section).ljust(0x200, b"\0") + code.ljust(0x200, b"\0")
    return image.ljust(0x2000, b"\0")


def nv_writes(block: int, token: str) -> list[str]:
    """qemu-io commands that store ``token`` in an NVRAM block (bytes inverted: "" is erased)."""
    first, second = (b ^ 0xFF for b in halves(token))
    offset = NV_BASE + block * NV_BLOCK
    if first == second:
        return [f"write -P {first} {offset} {NV_BLOCK}"]
    half = NV_BLOCK // 2
    return [f"write -P {first} {offset} {half}", f"write -P {second} {offset + half} {half}"]


def nv_decode(data: bytes, blocks: int) -> dict[str, str]:
    """The tokens of an NVRAM's blocks (empty ones left out; neither empty nor a token: '?')."""
    view = {}
    half = NV_BLOCK // 2
    for block in range(blocks):
        start = NV_BASE + block * NV_BLOCK
        parts = data[start:start + half], data[start + half:start + NV_BLOCK]
        if any(len(part) != half or part.count(part[:1]) != half for part in parts):
            view[str(block)] = "?"
            continue
        first, second = parts[0][0] ^ 0xFF, parts[1][0] ^ 0xFF
        if first == second != 0:
            view[str(block)] = chr(first)
        elif first != second:
            view[str(block)] = chr(first) + chr(second) if first and second else "?"
    return view


def export(node: Node, scratch: Path, snapshot_id: str | None, force_share: bool) -> bytes:
    """An NVRAM node's content (or one of its internal snapshots') as raw bytes."""
    return image_bytes(node.path, NV_SIZE, scratch, snapshot_id, force_share, node.format)
