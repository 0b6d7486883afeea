"""The instructor pipeline on nbgrader: release, autograde, the sample class."""
