"""The one exception type for problems with the user's input."""


class UserError(Exception):
    """Bad input: a file, an argument or data that cannot be used as given.

    The message must be one line naming the file, sequence or argument and
    what is wrong with it. The ``mimtrack`` command prints it without a
    traceback (unless ``--debug``) and exits with status 2.
    """
