"""Fault-injection machinery for the resilience tests (issue 4).

- proxy.FaultProxy: a loopback HTTP proxy between a consumer and the order feed that injects network faults.
- hostile.HostileFeedServer: a loopback server of broken and malicious feed pages (XXE, billion laughs, 50 MB…).
- atom: builders of Atom pages and order documents in the feed's wire format.
- load.OrderLoad: threads posting JSON orders, recording every 201.
- fleet: consumer fleets, random SIGKILLs, restarts.
- checks: feed walking and the nothing-lost / nothing-duplicated / in-order checkers.
- figures.record: figures appended to test-output/fault-figures.jsonl.
"""

