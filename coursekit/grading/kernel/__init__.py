"""One notebook's execution under grading: the sandbox, least privilege, scratch clean-up, recovery from a dead or hung kernel, budgets, outcomes."""
