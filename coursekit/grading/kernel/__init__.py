"""One notebook's execution under grading: the sandbox, recovery from a dead or hung kernel, budgets, outcomes."""
