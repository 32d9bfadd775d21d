"""Conferences (mod_conference subset)."""


class Conferences:
    def __init__(self, switch):
        self.switch = switch
        self.rooms = {}

    def api(self, arg):
        return "-ERR Conference not found\n"

    def join(self, ch, arg):
        raise NotImplementedError("conference")
