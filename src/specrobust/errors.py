"""Errors with a one-line message for the user; rule scripts print them without a traceback."""


class SpecRobustError(Exception):
    pass


class DataError(SpecRobustError):
    pass


class ConfigError(SpecRobustError):
    pass


class CheckpointError(SpecRobustError):
    pass
