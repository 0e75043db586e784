"""``python -m query`` runs the audioscan CLI (the same as the ``audioscan`` script)."""

from query.cli import main

main(prog_name="audioscan")
