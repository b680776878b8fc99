"""The runtime half: loads built envs into a running host. Standard library only."""
