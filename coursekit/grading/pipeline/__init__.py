"""The class run: plan (collect, intake, prepare, jobs) -> run (pool of workers) -> merge -> write (results)."""
