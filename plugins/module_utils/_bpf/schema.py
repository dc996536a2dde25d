"""JSON Schemas of map entries: a codec tree (``btfvalue``) in, a JSON Schema and readable validation
errors out.

``codec_schema(codec)`` states what the codec accepts: integer ranges from width and signedness,
enumerator names, every struct field required and no others, exact array lengths, the text forms
(IPv4/IPv6 networks, hex digits, char arrays). ``entry_schema(map_codec, value_required)`` is the
schema of one ``{key, value}`` entry; ``entry_errors(schema, entry, where)`` validates one with
jsonschema and returns messages naming the entry and the field, e.g.
``entries[3].value.port: 70000 is greater than the maximum of 65535``.
The schemas use only keywords that Draft 2020-12 and Draft 7 share, so that an older jsonschema (3.2,
as some distributions ship it) validates them with its Draft 7 validator.
"""

from __future__ import annotations

from typing import Any, List

from . import btfvalue as bv

try:
    from jsonschema.exceptions import ValidationError, best_match
    try:
        from jsonschema import Draft202012Validator as Validator
    except ImportError:  # jsonschema < 4
        from jsonschema import Draft7Validator as Validator
    HAS_JSONSCHEMA, JSONSCHEMA_IMPORT_ERROR = True, ""
except ImportError as exc:  # reported by the module (missing_required_lib)
    HAS_JSONSCHEMA, JSONSCHEMA_IMPORT_ERROR = False, str(exc)

IPV4 = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}"
IPV6 = r"[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*"  # a loose shape; the codec parses it exactly
PRINTABLE_ASCII = r"^[\x20-\x7e]*$"


def codec_schema(codec) -> dict:
    """The JSON Schema of the values ``codec`` encodes."""
    if isinstance(codec, bv.Int):
        numbers = {"type": "integer", "minimum": codec.minimum, "maximum": codec.maximum}
        if isinstance(codec, bv.Enum) and codec.names:
            return {"anyOf": [{"enum": [name for name, _value in codec.names]}, numbers]}
        if codec.takes_ipv4:
            return {"anyOf": [numbers, {"type": "string", "pattern": f"^{IPV4}$", "description": "an IPv4 address"}]}
        return numbers
    if isinstance(codec, bv.Float):
        return {"type": "number"}
    if isinstance(codec, bv.Hex):
        return {"type": "string", "pattern": f"^([0-9A-Fa-f]{{2}}){{{codec.size}}}$",
                "description": f"{codec.size} bytes as hex digits"}
    if isinstance(codec, bv.Array):
        items = {"type": "array", "items": codec_schema(codec.elem), "minItems": codec.count,
                 "maxItems": codec.count}
        if isinstance(codec, bv.Chars):
            return {"anyOf": [{"type": "string", "maxLength": codec.count, "pattern": PRINTABLE_ASCII,
                               "description": "printable ASCII text"}, items]}
        return items
    if isinstance(codec, bv.Struct):
        schema = {"type": "object", "properties": {f.name: codec_schema(f.codec) for f in codec.fields},
                  "additionalProperties": False}
        if isinstance(codec, bv.Union):
            return dict(schema, minProperties=1, maxProperties=1)
        return dict(schema, required=[f.name for f in codec.fields])
    if isinstance(codec, bv.LpmKey):
        if codec.ip_version == 4:
            return {"type": "string", "pattern": f"^{IPV4}(/[0-9]{{1,2}})?$",
                    "description": "an IPv4 network like 10.0.0.0/8"}
        if codec.ip_version == 6:
            return {"type": "string", "pattern": f"^{IPV6}(/[0-9]{{1,3}})?$",
                    "description": "an IPv6 network like 2001:db8::/32"}
        return {"type": "object", "properties": {
            "prefixlen": {"type": "integer", "minimum": 0, "maximum": codec.max_prefixlen},
            "data": codec_schema(codec.data)}, "required": ["prefixlen", "data"], "additionalProperties": False}
    raise TypeError(f"no schema for {type(codec).__name__}")


def entry_schema(codec: bv.MapCodec, value_required: bool = True) -> dict:
    """Schema of one entry ``{key, value}`` (``value`` optional when ``value_required`` is false)."""
    return {"type": "object",
            "properties": {"key": codec_schema(codec.key), "value": codec_schema(codec.value)},
            "required": ["key", "value"] if value_required else ["key"], "additionalProperties": False}


def validator(schema: dict):
    """A jsonschema validator of ``schema``; ValueError when jsonschema is not installed."""
    if not HAS_JSONSCHEMA:
        raise ValueError(f"validating map entries needs the jsonschema library: {JSONSCHEMA_IMPORT_ERROR}")
    return Validator(schema)


def entry_errors(checker, entry: Any, where: str) -> List[str]:
    """Every way ``entry`` breaks the schema, as ``"<where>.<field path>: <reason>"``."""
    return [f"{field_path(where, error.absolute_path)}: {_reason(error)}"
            for error in sorted(checker.iter_errors(entry), key=lambda e: list(map(str, e.absolute_path)))]


def _reason(error: ValidationError) -> str:
    if error.context:  # anyOf: why the alternative of the instance's own type failed, if there is one
        typed = [e for e in error.context if e.validator != "type"]
        return _reason(best_match(typed or error.context))
    if error.validator == "pattern" and "description" in error.schema:
        return f"{error.instance!r} is not {error.schema['description']}"
    return error.message


def field_path(where: str, path) -> str:
    """``entries[3]`` + ("value", "allowed", 2) -> ``entries[3].value.allowed[2]``."""
    return where + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in path)
