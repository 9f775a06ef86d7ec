"""The persistent, sandboxed Python kernel that runs the agent's cells (one process per question)."""
