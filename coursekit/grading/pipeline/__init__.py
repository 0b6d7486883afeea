"""The class run: plan (collect, ledger, intake, prepare, jobs) -> run (pool of workers) -> record (gradebook) -> write (results)."""
