"""Package list for setuptools: netdiag and the rule folders shipped as ``netdiag_rules``."""

from setuptools import find_packages, setup

setup(packages=[*find_packages(include=["netdiag*"]), "netdiag_rules"])
