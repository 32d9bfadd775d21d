"""Reading our YAML files safely, and positions in ruamel.yaml trees for `file:line:col: problem`
errors (the settings, IVR flow, bot, agents/queues and tickets loaders all read through `load`).

Every file we load can arrive from outside (`POST /v1/reload`, a flow an operator was sent): a 2 KB
file of nested aliases ("billion laughs") expands to billions of nodes when the tree is walked
(plain copies, schema checks, position marks) and froze the engine past 1.3 GiB. Our files need no
aliases, so `load` refuses them while composing, and caps depth and node count, before any of
that work is done.
"""
from ruamel.yaml import YAML
from ruamel.yaml.composer import Composer
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.events import AliasEvent

MAX_BYTES = 2 * 1024 * 1024     # our largest shipped file is a few KB; a flow set of 100 menus is ~200 KB
MAX_NODES = 200_000             # scalars, mappings and sequences in one file
MAX_DEPTH = 64                  # nesting (a deep flow is ~8 levels); deeper overflows recursive walks


class UnsafeYAML(MarkedYAMLError):
    """A file we refuse to compose (alias, too deep, too many nodes, too large)."""


class _BoundedComposer(Composer):
    def compose_node(self, parent, index):
        if self.parser.check_event(AliasEvent):
            event = self.parser.peek_event()
            raise UnsafeYAML(None, None, f"alias *{event.anchor} refused: write the value out "
                             "(aliases are not allowed in hotline files)", event.start_mark)
        self._nodes = getattr(self, "_nodes", 0) + 1
        if self._nodes > MAX_NODES:
            raise UnsafeYAML(None, None, f"more than {MAX_NODES} values in one file",
                             self.parser.peek_event().start_mark)
        if self.depth >= MAX_DEPTH:
            raise UnsafeYAML(None, None, f"nested deeper than {MAX_DEPTH} levels",
                             self.parser.peek_event().start_mark)
        return super().compose_node(parent, index)


def load(text):
    """The round-trip (position-keeping) tree of YAML `text`; raises MarkedYAMLError (UnsafeYAML
    for an alias, a too deep or too large document)."""
    if len(text) > MAX_BYTES:
        raise UnsafeYAML(None, None, f"file larger than {MAX_BYTES // 1024} KB", None)
    yaml = YAML(typ="rt")
    yaml.Composer = _BoundedComposer
    return yaml.load(text)



def error_pos(exc, text):
    """1-based (line, col) of a YAML error: its mark, or for a ReaderError (a control character)
    the position it names; (1, 1) when neither is known."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if mark is not None:
        return mark.line + 1, mark.column + 1
    at = getattr(exc, "position", None)
    if isinstance(at, int) and isinstance(text, str):
        return text.count("\n", 0, at) + 1, at - (text.rfind("\n", 0, at) + 1) + 1
    return 1, 1


def pos(mapping, key=None):
    """1-based (line, col) of `key` in a ruamel mapping (of the mapping itself without a key);
    (1, 1) when ruamel kept no position."""
    try:
        line, col = mapping.lc.key(key) if key is not None else (mapping.lc.line, mapping.lc.col)
        return line + 1, col + 1
    except Exception:
        return 1, 1


def value_pos(mapping, key):
    """1-based (line, col) of the value of `key` (where a reference or a wrong value is written);
    the key's position when ruamel kept none for the value."""
    try:
        line, col = mapping.lc.value(key)
        return line + 1, col + 1
    except Exception:
        return pos(mapping, key)


def item_pos(seq, index):
    """1-based (line, col) of item `index` of a ruamel sequence; (1, 1) when unknown."""
    try:
        line, col = seq.lc.item(index)
        return line + 1, col + 1
    except Exception:
        return 1, 1


def pos_at(data, keys):
    """Position of the deepest of `keys` (a path of mapping keys and list indexes) present in
    the ruamel tree."""
    found, node = pos(data), data
    for key in keys:
        if isinstance(node, dict) and key in node:
            found, node = pos(node, key), node[key]
        elif isinstance(node, list) and isinstance(key, int) and key < len(node):
            try:
                line, col = node.lc.item(key)
                found = (line + 1, col + 1)
            except Exception:
                pass
            node = node[key]
        else:
            break
    return found


def plain(value):
    """Plain dicts and lists (string keys) from a ruamel tree, for jsonschema and the engine."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value
