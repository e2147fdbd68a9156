"""``python -m relightzoo``: the command line, for launchers that run modules
(``torchrun --nproc-per-node N -m relightzoo train ...``)."""

from relightzoo.cli import main

if __name__ == "__main__":
    main(prog_name="relightzoo")
