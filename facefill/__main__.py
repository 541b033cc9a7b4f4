"""``python -m facefill`` (also what ``torchrun -m facefill`` runs)."""

from facefill.cli.app import main

if __name__ == "__main__":
    main()
