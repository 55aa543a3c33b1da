"""Interface probes: does a core system answer on its interfaces the way its clients need and with what latency.

One module per probe family; each exposes SPECS for checks.kinds. Failures are classified once, in
`checks.interface.failure`, so every kind reports a dead service the same way.
"""
