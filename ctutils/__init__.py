"""ctutils."""
