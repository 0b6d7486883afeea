"""What leaves coursekit for a learning-management system: the term's grades in the import
formats of Canvas and Moodle and nbgrader's plain CSV (exports), and each student's feedback
pages as one zip (bundles)."""
