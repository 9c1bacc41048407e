"""Batch scanning of capture archives: walk, analyse in parallel, keep results in a catalogue.

``walk`` finds the captures and their facts, ``worker`` analyses one file, ``runner`` runs the
workers (local processes or a Dask cluster) and writes each file's result into the SQLite
``catalogue``; ``report`` summarises a catalogue. `netdiag scan` and `netdiag scan-report` are
thin over :func:`netdiag.scan.runner.scan` and :func:`netdiag.scan.report.build_report`.
"""
