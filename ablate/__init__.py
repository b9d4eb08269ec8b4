"""ablate: which training tricks really help an image classifier, by how much, how surely."""

__version__ = "0.1.0"
