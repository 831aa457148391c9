"""A driver spec (a registered name or a third party's ``module:Class``), a profile and the
driver's options, resolved to a driver class that is here and a profile it follows on the
versions installed."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

from snaptree.model.escape import printable
from snaptree.model.profiles import PROFILES, follows, installed_text, profile_for, versions_text

from .driver import OBSERVATIONS, Driver, DriverUnavailable
from .driver_checks import unknown_observations
from .drivers import load
from .errors import UsageError


@dataclass(frozen=True)
class ResolvedDriver:
    spec: str  # as the user gave it: what a replay command names
    cls: type[Driver]
    profile: str
    options: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()  # what a user should hear (a profile chosen for the installed versions)

    @property
    def name(self) -> str:
        return self.cls.name

    def make(self) -> Driver:
        return self.cls(self.profile, **self.options)


def resolve_driver(driver: str | type[Driver], profile: str | None = None,
                   options: dict[str, Any] | None = None) -> ResolvedDriver:
    """``driver`` is a spec or a Driver class.  Raises UsageError for a spec, profile or option
    that cannot work, DriverUnavailable when the driver's real component is missing or
    refuses (its preflight)."""
    options = dict(options or {})
    cls = driver if isinstance(driver, type) else _load(driver)
    spec = driver if isinstance(driver, str) else cls.name
    if inspect.isabstract(cls):
        raise UsageError(f"driver '{spec}' is abstract: it does not implement "
                         f"{', '.join(sorted(cls.__abstractmethods__))}")
    unset = [attr for attr in ("name", "profiles") if not getattr(cls, attr, None)]
    if unset:
        raise UsageError(f"driver '{spec}' does not set {' or '.join(unset)}")
    unknown = unknown_observations(frozenset(cls.observes))
    if unknown:
        raise UsageError(f"driver '{spec}' observes {', '.join(unknown)}, which snaptree does not know "
                         f"(known: {', '.join(sorted(OBSERVATIONS))})")
    if options.get("uri") and not cls.takes_uri:
        raise UsageError(f"driver '{cls.name}' takes no --uri (only libvirt does)")
    if profile is not None and profile not in PROFILES:
        raise UsageError(f"unknown profile '{profile}' (known: {', '.join(PROFILES)})")
    profile = profile or cls.default_profile(options)
    if profile not in PROFILES:
        raise UsageError(f"driver '{cls.name}' follows '{profile}', which is no profile (known: {', '.join(PROFILES)})")
    if profile not in cls.profiles:
        raise UsageError(f"driver '{cls.name}' follows {', '.join(cls.profiles)}, not '{profile}'")
    problem = cls.availability()
    if problem:
        raise DriverUnavailable(problem)
    profile, notes = _profile_for_installed(cls, profile, options)
    cls.preflight(profile, options)
    return ResolvedDriver(spec, cls, profile, options, notes)


def _load(spec: str) -> type[Driver]:
    module, colon, name = spec.partition(":")
    if colon and not (module and name):
        raise UsageError(f"--driver '{spec}': give a driver name (see `snaptree drivers`) or module:Class")
    try:
        return load(spec)
    except DriverUnavailable:
        raise
    except Exception as error:  # whatever a third party's module raises on import
        raise UsageError(f"cannot load driver '{spec}': {type(error).__name__}: {error}") from None


def _profile_for_installed(cls: type[Driver], profile: str, options: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    """The profile of the same family that follows the versions the driver finds installed
    (libvirt-qemu on libvirt 9.0, libvirt-qemu-11.3 on 11.3), with a note when it is not the
    one asked for."""
    installed = cls.installed_versions({**options, "profile": profile})
    chosen = profile_for(profile, installed)
    if chosen != profile and chosen in cls.profiles:
        return chosen, (printable(f"{installed_text(installed)} installed: profile {chosen} follows it ({profile} "
                                  f"follows {versions_text(PROFILES[profile])})"),)
    if not follows(PROFILES[profile], installed):
        return profile, (printable(f"warning: {installed_text(installed)} installed, and profile {profile} follows "
                                   f"{versions_text(PROFILES[profile])}"),)
    return profile, ()
