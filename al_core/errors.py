"""Exceptions raised for bad input; messages say what was expected and what arrived."""


class InputError(ValueError):
    """An input (array, file, parameter) is not what the caller promised."""


class DatasetMissingError(FileNotFoundError):
    """A dataset's files are not on disk; the message says how to get them."""
