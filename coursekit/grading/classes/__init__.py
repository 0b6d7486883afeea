"""Bundled classes of submissions: the sample class (the demo) and the hostile class (the tests)."""
