"""Topology facts: what engineers paste (ip, sysctl, ipvsadm, IPsec, nft/iptables, docker), with
provenance, plus what traffic shows (MAC bindings, gateways, proxy ranges).

Public API: ``load_facts(paths, default_host=None) -> (FactSet, problems)``, the model classes in
``netdiag.facts.model``, exports in ``netdiag.facts.export`` and ``netdiag.facts.inferred``.
"""

from __future__ import annotations

from netdiag.facts.loader import load_facts
from netdiag.facts.model import FactSet, Host, Problem, Source

__all__ = ["FactSet", "Host", "Problem", "Source", "load_facts"]
