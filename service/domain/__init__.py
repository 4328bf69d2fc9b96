"""The domain's plain vocabulary: closed value sets and the platform's limits and prices.

Standard library only, so that the pure layers (workflows, policies, prediction, the control
loop's lifecycle core) and the emulator's worker processes import it without a database driver
or an ORM.
"""
