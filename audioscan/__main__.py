"""``python -m audioscan`` runs the audioscan CLI (the same as the ``audioscan`` script)."""

from audioscan.cli import main

main(prog_name="audioscan")
