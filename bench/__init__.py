"""`make bench`: each engine measured at its strength, side by side in one run, on this machine.

Every leg reuses the platform's own jobs, generator and latency tool (no separate toy pipeline), runs
against a private runtime (own state folder, own free ports) and records its full configuration. Legs run
one after another, never concurrently: on a 2-core machine a neighbour would be part of the result.
``python -m bench --profile quick|full|smoke`` writes ``results.json`` and ``REPORT.md`` with plots.
"""
