"""Packages are found, not listed by hand: everything under wse_emu/, plus the two data
packages mapped from top-level directories (isa/ -> wse_emu.isa, programs/ ->
wse_emu.programs) and any subpackage they grow. Metadata and data files: pyproject.toml."""

from setuptools import find_packages, setup

MAPPED = {"wse_emu.isa": "isa", "wse_emu.programs": "programs"}

packages = find_packages(include=["wse_emu", "wse_emu.*"])
for name, directory in MAPPED.items():
    packages += [name] + [f"{name}.{sub}" for sub in find_packages(directory)]

setup(packages=packages, package_dir=MAPPED)
