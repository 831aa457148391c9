"""The configuration is pyproject.toml's.  This file only keeps setuptools' "Editable installation."
notice out of `pip install -e .`: setuptools gives it for every editable install of a package-dir
mapping such as snaptree's, and pip shows it as a warning; every other warning stays."""

import warnings

from setuptools import setup
from setuptools.warnings import InformationOnly

warnings.filterwarnings("ignore", message="Editable installation", category=InformationOnly)
setup()
