"""The profiles, one module per hypervisor API, by name."""

from __future__ import annotations

import re

from .base import Profile
from .esx import Esx
from .libvirt import LibvirtTest
from .libvirt_esx import LibvirtEsx
from .libvirt_qemu import LibvirtQemu
from .libvirt_qemu_113 import LibvirtQemu113
from .proposal_2010 import Proposal2010
from .qemu_img import QemuImg
from .qemu_live import QemuHmp, QemuQmp
from .vbox import VBox
from .vcsim import Vcsim

PROFILES: dict[str, type[Profile]] = {
    cls.name: cls for cls in (Esx, VBox, QemuImg, QemuHmp, QemuQmp, LibvirtTest, LibvirtQemu, LibvirtQemu113, Proposal2010, Vcsim,
                              LibvirtEsx)
}


def get_profile(name: str) -> Profile:
    """The profile called ``name``; KeyError names the known ones."""
    try:
        return PROFILES[name]()
    except KeyError:
        raise KeyError(f"unknown profile '{name}' (known: {', '.join(PROFILES)})") from None


def version_key(text: str) -> tuple[int, ...]:
    """"11.3.0" -> (11, 3, 0); "1:7.2+dfsg-7" -> (7, 2): the dotted numbers after any epoch."""
    match = re.match(r"(?:\d+:)?(\d+(?:\.\d+)*)", text.strip())
    return tuple(int(part) for part in match.group(1).split(".")) if match else ()


def follows(profile: type[Profile], installed: dict[str, str]) -> bool:
    """Whether every installed component the profile names is in its version range."""
    for component, (low, high) in profile.versions.items():
        if component in installed:
            version = version_key(installed[component])
            if version < version_key(low) or (high is not None and version >= version_key(high)):
                return False
    return True


def versions_text(profile: type[Profile]) -> str:
    """"libvirt >= 9.0, < 11.3; QEMU >= 7.2", or "" for a profile read from documentation."""
    return "; ".join(f"{component} >= {low}" + (f", < {high}" if high else "")
                     for component, (low, high) in profile.versions.items())


def installed_text(installed: dict[str, str]) -> str:
    """"libvirt 11.3.0, QEMU 10.0.2": the versions a driver found."""
    return ", ".join(f"{component} {version}" for component, version in installed.items())


def profile_for(name: str, installed: dict[str, str]) -> str:
    """The profile of ``name``'s family that follows the installed versions: ``name`` itself
    when it does (or when none does)."""
    chosen = PROFILES[name]
    if follows(chosen, installed):
        return name
    family = chosen.family or name
    return next((other.name for other in PROFILES.values() if (other.family or other.name) == family
                 and follows(other, installed)), name)


__all__ = ["PROFILES", "Profile", "follows", "get_profile", "installed_text", "profile_for", "version_key", "versions_text"]
