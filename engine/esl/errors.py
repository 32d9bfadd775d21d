"""Exceptions of the ESL layer."""


class EslError(Exception):
    """Base of everything the ESL layer raises."""


class ConnectionLost(EslError):
    """The socket closed or broke; raised into every wait that was pending on it."""


class ReplyTimeout(ConnectionLost):
    """The switch did not answer in time; the connection is dropped, since later replies
    could no longer be matched to their commands."""


class CommandFailed(EslError):
    """The switch answered `-ERR ...`."""

    def __init__(self, command, reply):
        super().__init__(f"{command.split(' ', 1)[0]}: {reply}")
        self.command = command
        self.reply = reply


class ChannelGone(EslError):
    """The channel hung up before the operation completed."""


class AuthFailed(EslError):
    """The switch refused our password."""
