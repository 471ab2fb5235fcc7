"""Package discovery only; everything else is in pyproject.toml.

core/ and adapters/ sit at the top of the repository (the layout is the user's) but install as
seatgate.core and seatgate.adapters. pyproject.toml cannot express "find the packages under core/ and
prefix them", so this does, and setuptools maps each prefix back to its folder through package_dir.
"""

from setuptools import find_packages, setup

ROOTS = {"seatgate.core": "core", "seatgate.adapters": "adapters"}

packages = []
for name, folder in ROOTS.items():
    packages.append(name)
    packages += [f"{name}.{sub}" for sub in find_packages(folder)]

setup(packages=packages, package_dir=ROOTS)
