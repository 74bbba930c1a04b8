"""``python -m gates`` runs the model-gates command."""
from gates.cli import main

main()
