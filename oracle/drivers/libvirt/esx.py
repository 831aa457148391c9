"""libvirt's ESX driver (profile libvirt-esx), run against the bundled vSphere simulator."""

from __future__ import annotations

import contextlib
from typing import Any

from ...driver import DriverUnavailable
from .session import Session, libvirt

ESX_URI = "esx://127.0.0.1:PORT/?no_verify=1"


class EsxSimulator:
    """libvirt's ESX driver against the bundled vSphere simulator: one simulator and one
    connection for the whole check, a fresh VM per example (made and destroyed through pyvmomi;
    libvirt's ESX driver defines VMs only from a full .vmx)."""

    def __init__(self, uri: str):
        from .. import vcsim, vsphere

        if vsphere.vim is None:
            raise DriverUnavailable(f"pyvmomi is not installed: {vsphere.INSTALL}")
        self.uri, self.vcsim, self.vsphere = uri, vcsim, vsphere
        self.simulator: Any = None
        self.vsphere_session: Any = None
        self.vm: Any = None
        self.session: Session | None = None
        self.examples = 0

    def new_domain(self) -> Session:
        if self.simulator is None or not self.simulator.alive():
            self.close()
            self.simulator = sim = self.vcsim.Simulator()
            self.vsphere_session = self.vsphere.Session(sim.host, sim.port, sim.user, sim.password, insecure=True)
            libvirt.registerErrorHandler(lambda *_: None, None)
            self.session = Session(self.uri.replace("PORT", str(sim.port)), sim.user, sim.password)
        assert self.session is not None
        self.examples += 1
        self.vm = self.vsphere_session.new_vm(f"snaptree-{self.examples}")
        self.session.call("lookup", f"snaptree-{self.examples}")
        return self.session

    def drop_domain(self) -> None:
        if self.vm is not None and not self.vsphere_session.destroy_vm(self.vm):
            self.close()  # the next example gets a fresh simulator
        self.vm = None

    def close(self) -> None:
        if self.session is not None:
            with contextlib.suppress(Exception):
                self.session.close()
            self.session = None
        if self.vsphere_session is not None:
            self.vsphere_session.close()
            self.vsphere_session = None
        if self.simulator is not None:
            self.simulator.stop()
            self.simulator = None
