"""python -m nordflow_agent."""

from .agent import main

main()
