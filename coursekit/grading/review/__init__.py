"""What a person reviews after a class run: the similarity report (similarity.py)."""
