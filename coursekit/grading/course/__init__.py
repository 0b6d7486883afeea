"""nbgrader plumbing: the working course directory, the release, the feedback pages; which reference answers which exercise."""
