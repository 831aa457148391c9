"""Drivers by name.  Real drivers are imported only when asked for, so that a missing
client library never breaks the rest of snaptree."""

from __future__ import annotations

import importlib
import os
import sys

from ..driver import Driver, DriverUnavailable

# name -> "module:Class", relative to this package
REGISTRY = {
    "model": ".model:ModelDriver",
    "qemu-img": ".qemu_img:QemuImgDriver",
    "qemu-hmp": ".qemu_hmp_qmp:QemuHmpDriver",
    "qemu-qmp": ".qemu_hmp_qmp:QemuQmpDriver",
    "qcow2-chain": ".qcow2_chain:Qcow2ChainDriver",
    "libvirt": ".libvirt:LibvirtDriver",
    "vsphere": ".vsphere:VsphereDriver",
}


def load(spec: str) -> type[Driver]:
    """A driver class from a registered name or a third party's ``module:Class``."""
    target = REGISTRY.get(spec, spec)
    if ":" not in target:
        raise DriverUnavailable(f"unknown driver '{spec}' (known: {', '.join(REGISTRY)}; or give module:Class)")
    module_name, _, class_name = target.partition(":")
    if not module_name.startswith(".") and os.getcwd() not in sys.path:
        # as `python -m` would: a third party's module:Class is found from the current directory
        # too (after the installed packages, which it cannot shadow), or from PYTHONPATH
        sys.path.append(os.getcwd())
    try:
        module = importlib.import_module(module_name, package=__name__)
    except ImportError as error:
        raise DriverUnavailable(f"cannot import driver module '{module_name}': {error}") from None
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, Driver)):
        raise DriverUnavailable(f"'{spec}' is not a snaptree Driver class")
    return cls
