"""Positions in ruamel.yaml trees and plain copies of them, for `file:line:col: problem` errors
(the IVR flow loader and the bot file loader report problems the same way)."""


def pos(mapping, key=None):
    """1-based (line, col) of `key` in a ruamel mapping (of the mapping itself without a key);
    (1, 1) when ruamel kept no position."""
    try:
        line, col = mapping.lc.key(key) if key is not None else (mapping.lc.line, mapping.lc.col)
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
