"""ablate's tests: one folder per subpackage of ablate/ (DESIGN.md)."""
