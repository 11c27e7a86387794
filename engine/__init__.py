"""The shared machinery of hoopflow's phases, with no phase of its own: processor
declarations and what is derived from them (tasks, fingerprints, plans, the phase runner),
the run ledger, cache and retry policies, date write locks, thresholds, checks, reports."""
