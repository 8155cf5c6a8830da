"""python -m pyrunc"""

from pyrunc.cli import main

main()
