"""libvirt's snapshot API against libvirt's own drivers: the test driver, the embedded QEMU
driver and the ESX driver (``driver``).  One concept per module: ``session`` (the connection,
and libvirt's errors as the model's kinds), ``embedded`` (the helper process that runs the
embedded QEMU driver as nobody), ``disk`` (the QEMU domain's block data), ``domain_xml`` (the
XML read from and sent to libvirt), ``layouts`` (the VMs of several disks it builds, per version)
and ``esx`` (the vSphere simulator behind the ESX driver)."""

from .driver import LibvirtDriver

__all__ = ["LibvirtDriver"]
