"""The profiles, one module per hypervisor API, by name."""

from __future__ import annotations

from .base import Profile
from .esx import Esx
from .libvirt import LibvirtQemu, LibvirtTest
from .libvirt_esx import LibvirtEsx
from .proposal_2010 import Proposal2010
from .qemu_img import QemuImg
from .qemu_live import QemuHmp, QemuQmp
from .vbox import VBox
from .vcsim import Vcsim

PROFILES: dict[str, type[Profile]] = {
    cls.name: cls for cls in (Esx, VBox, QemuImg, QemuHmp, QemuQmp, LibvirtTest, LibvirtQemu, Proposal2010, Vcsim,
                              LibvirtEsx)
}


def get_profile(name: str) -> Profile:
    """The profile called ``name``; KeyError names the known ones."""
    try:
        return PROFILES[name]()
    except KeyError:
        raise KeyError(f"unknown profile '{name}' (known: {', '.join(PROFILES)})") from None


__all__ = ["PROFILES", "Profile", "get_profile"]
